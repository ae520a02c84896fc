pub mod auth;
pub mod channels;
pub mod settings;
pub mod shell;
