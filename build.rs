// `sqlx::migrate!` embeds the migrations folder at compile time; without this, a new or
// edited migration would not reach the binary until some Rust file changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
