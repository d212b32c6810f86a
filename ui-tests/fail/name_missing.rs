use sessions::Session;

// The stored name is required: without it, renaming the struct would move its data.
#[derive(Session, Default)]
struct ShoppingCart {
    items: Vec<String>,
}

fn main() {}
