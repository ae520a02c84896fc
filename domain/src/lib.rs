//! Types that every part of Balas shares: the server, the browser (wasm32), the workers and the tests.
//!
//! Values that come from outside (a form, an API call) are parsed into these types once, at the edge;
//! code that holds a [`Email`] or a [`PersonName`] knows it is valid.

/// The conversions of a validated string newtype (a tuple struct around a `String` with a
/// `parse(&str) -> Result<Self, FieldError>`): from a `String` through `parse` (so serde checks it
/// too), back into a `String`, and `Display`.
macro_rules! string_newtype {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = $crate::FieldError;
            fn try_from(raw: String) -> Result<Self, $crate::FieldError> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

mod account;
mod ai;
mod api;
mod attributes;
mod broadcast;
mod crm;
mod error;
mod ids;
mod inbox;
mod media;
mod messaging;
mod system;
mod validate;

pub use account::*;
pub use ai::*;
pub use api::*;
pub use attributes::*;
pub use broadcast::*;
pub use crm::*;
pub use error::*;
pub use ids::*;
pub use inbox::*;
pub use media::*;
pub use messaging::*;
pub use system::*;
pub use validate::*;
