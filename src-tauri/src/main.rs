//! The `callbox` desktop app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    callbox_desktop::run();
}
