//! Server functions, grouped by resource. Each is thin: state, an access check from
//! `crate::ssr::auth`, one backend call, error mapping.

pub mod auth;
pub mod preferences;
pub mod system;

pub use auth::{
    CompleteSetup, GetMe, GetSignInOptions, SignIn, SignOut, complete_setup, get_me,
    get_sign_in_options, sign_in, sign_out,
};
pub use preferences::{SetTheme, set_theme};
pub use system::{GetSystemStatus, get_system_status};
pub mod settings;

pub use settings::accounts::{
    AddApiAccount, DeleteApiAccount, GetApiAccounts, RevokeApiAccount, RotateApiKey,
    TestApiAccount, add_api_account, delete_api_account, get_api_accounts, revoke_api_account,
    rotate_api_key, test_api_account,
};
pub use settings::organizations::{
    CreateOrganization, ListOrganizations, create_organization, list_organizations,
};
pub use settings::sso::{
    AddSsoRule, DeleteSsoRule, GetSsoSettings, add_sso_rule, delete_sso_rule, get_sso_settings,
};
