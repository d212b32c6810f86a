//! Accessors are as visible as their field: a private field's cannot be called from another module.

mod model {
    use sessions::prelude::*;

    #[derive(Session, Default)]
    #[session(name = "account")]
    pub struct Account {
        pub name: String,
        secret: String,
    }
}

fn main() {
    let mut account = sessions::Typed::<model::Account>::default();
    account.set_name("ada".into());
    account.set_secret("hunter2".into());
}
