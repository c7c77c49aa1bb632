pub mod api;
pub mod db;
