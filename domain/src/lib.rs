//! Types that every part of Balas shares: the server, the browser (wasm32), the workers and the tests.
//!
//! Values that come from outside (a form, an API call) are parsed into these types once, at the edge;
//! code that holds a [`Email`] or a [`PersonName`] knows it is valid.

mod account;
mod error;
mod ids;
mod messaging;
mod system;
mod validate;

pub use account::*;
pub use error::*;
pub use ids::*;
pub use messaging::*;
pub use system::*;
pub use validate::*;
