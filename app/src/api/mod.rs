//! Server functions, grouped by resource. Each is thin: state, an access check from
//! `crate::ssr::auth`, one backend call, error mapping.

pub mod account;
pub mod assign;
pub mod auth;
pub mod devices;
pub mod jobs;
pub mod preferences;
pub mod settings;
#[cfg(feature = "ssr")]
mod support;
pub mod system;

pub use account::{
    BeginTotp, ChangePassword, ConfirmTotp, GetAccount, RegenerateRecoveryCodes, begin_totp,
    change_password, confirm_totp, get_account, regenerate_recovery_codes,
};
pub use assign::{
    ChooseAction, GetActionChoices, GetAssignStart, GetDraftInput, GetPreview, SaveDevices,
    TakeFilteredDevices, choose_action, get_action_choices, get_assign_start, get_draft_input,
    get_preview, save_devices, take_filtered_devices,
};
pub use auth::{
    CompleteSetup, GetMe, GetSignInOptions, SignIn, SignOut, complete_setup, get_me,
    get_sign_in_options, sign_in, sign_out,
};
pub use devices::{
    GetDevice, GetDeviceCoverage, GetDeviceFilters, GetSyncStatus, ListDevices, ListServices,
    RefreshDeviceCoverage, SyncNow, get_device, get_device_coverage, get_device_filters,
    get_sync_status, list_devices, list_services, refresh_device_coverage, sync_now,
};
pub use jobs::{
    CancelJob, GetConfirmation, GetJob, GetJobResults, ListJobs, RetryFailed, StartJob, cancel_job,
    get_confirmation, get_job, get_job_results, list_jobs, retry_failed, start_job,
};
pub use preferences::{SetTheme, set_theme};
pub use settings::audit::{ListAudit, list_audit};
pub use settings::users::{
    CreateUser, ListUsers, RemoveUserRole, ResetUserPassword, ResetUserTotp, SetUserDisabled,
    SetUserRole, create_user, list_users, remove_user_role, reset_user_password, reset_user_totp,
    set_user_disabled, set_user_role,
};
pub use system::{GetSystemStatus, get_system_status};

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
