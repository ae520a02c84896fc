pub mod auth;
pub mod channels;
pub mod settings;
pub mod shell;
pub mod inbox;
pub mod phone;
