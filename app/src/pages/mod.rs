pub mod auth;
pub mod channels;
pub mod contacts;
pub mod import;
pub mod inbox;
pub mod phone;
pub mod settings;
pub mod shell;
