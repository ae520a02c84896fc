pub mod auth;
pub mod settings;
pub mod shell;
