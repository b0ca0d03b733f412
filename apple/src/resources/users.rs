//! Users (`users`, SPEC §11.1, AB 2.0+ only, read-only).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-users>

use serde::Deserialize;
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{OrganizationalUnitId, Resource, UserId, date, open_enum};
use crate::request::{GetRequest, ListRequest, ResourceType};

open_enum!(
    /// Account status.
    UserStatus {
        New = "NEW",
        Released = "RELEASED",
        Active = "ACTIVE",
        Deactivated = "DEACTIVATED",
        Locked = "LOCKED",
        LockedForSharedIpad = "LOCKED_FOR_SHARED_IPAD",
    }
);
open_enum!(
    /// Phone number kind.
    PhoneNumberType { Work = "WORK", Home = "HOME", Mobile = "MOBILE" }
);

/// A user.
pub type User = Resource<UserId, UserAttributes>;

/// A role in an organizational unit.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleOu {
    /// Role name, e.g. `Administrator`.
    #[serde(default)]
    pub role_name: Option<String>,
    /// The unit.
    #[serde(default)]
    pub ou_id: Option<OrganizationalUnitId>,
}

/// A phone number.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    /// The number as entered.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Kind.
    #[serde(default, rename = "type")]
    pub kind: Option<PhoneNumberType>,
}

/// `User.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAttributes {
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Middle name.
    #[serde(default)]
    pub middle_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<UserStatus>,
    /// Managed Apple Account.
    #[serde(default)]
    pub managed_apple_account: Option<String>,
    /// Invited external user.
    #[serde(default)]
    pub is_external_user: Option<bool>,
    /// Roles per unit.
    #[serde(default)]
    pub role_ou_list: Option<Vec<RoleOu>>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Employee number.
    #[serde(default)]
    pub employee_number: Option<String>,
    /// Cost center.
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Division.
    #[serde(default)]
    pub division: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Start date.
    #[serde(default, deserialize_with = "date::option")]
    pub start_date_time: Option<OffsetDateTime>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
    /// Phone numbers.
    #[serde(default)]
    pub phone_numbers: Option<Vec<PhoneNumber>>,
}

impl ResourceType for UserAttributes {
    const TYPE: &'static str = "users";
}

/// `GET /v1/users`.
pub fn list() -> ListRequest<User> {
    ListRequest::new("users.list", "/v1/users".to_owned())
}

/// `GET /v1/users/{id}`.
pub fn get(id: &UserId) -> GetRequest<User> {
    GetRequest::new("users.get", format!("/v1/users/{}", seg(id.as_str())))
}
