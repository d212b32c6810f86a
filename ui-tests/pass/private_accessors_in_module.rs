//! A private field's accessors work inside its module; a `pub` field's everywhere.

mod model {
    use sessions::prelude::*;

    #[derive(Session, Default)]
    #[session(name = "account")]
    pub struct Account {
        pub name: String,
        secret: String,
    }

    pub fn set_both(account: &mut Typed<Account>) {
        account.set_name("ada".into());
        account.set_secret("hunter2".into());
        assert_eq!(account.secret(), "hunter2");
    }
}

fn main() {
    let mut account = sessions::Typed::<model::Account>::default();
    model::set_both(&mut account);
    assert_eq!(account.name(), "ada");
}
