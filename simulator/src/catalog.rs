//! Static product tables the generator draws from. Devices store an index into
//! [`MODELS`] plus small indices for capacity and colour, so a device costs a
//! few bytes instead of several heap strings.
//!
//! Weights are rough shares in a business fleet \[guess\]: about 38 % iPhone,
//! 30 % Mac, 23 % iPad, 4 % Apple TV, 4 % Watch, 1 % Vision.

/// Whether a model carries a cellular modem (IMEI/MEID/EID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cellular {
    Never,
    /// Some configurations are cellular (iPad Wi-Fi + Cellular, Watch GPS + Cellular).
    Sometimes,
    Always,
}

/// One product model.
#[derive(Debug)]
pub(crate) struct Model {
    pub family: &'static str,
    pub name: &'static str,
    pub product_type: &'static str,
    pub capacities: &'static [&'static str],
    pub colors: &'static [&'static str],
    /// First four characters of the part number; the fifth encodes the configuration.
    pub part_prefix: &'static str,
    /// Year of introduction: no order predates it.
    pub year: i32,
    pub cellular: Cellular,
    /// Whether the model has built-in Ethernet (desktops).
    pub ethernet: bool,
    /// Relative weight in the generated fleet.
    pub weight: u32,
}

const MAC_COLORS: &[&str] = &["SILVER", "SPACE GRAY"];
const AIR_COLORS: &[&str] = &["MIDNIGHT", "STARLIGHT", "SILVER", "SPACE GRAY"];
const PHONE_COLORS: &[&str] = &["BLACK", "BLUE", "GREEN", "PINK", "WHITE"];
const PRO_PHONE_COLORS: &[&str] = &[
    "BLACK TITANIUM",
    "WHITE TITANIUM",
    "NATURAL TITANIUM",
    "DESERT TITANIUM",
];
const PAD_COLORS: &[&str] = &["SPACE GRAY", "SILVER", "BLUE", "PURPLE", "STARLIGHT"];

macro_rules! model {
    ($fam:expr, $name:expr, $pt:expr, $cap:expr, $col:expr, $pp:expr, $y:expr, $cell:ident, $eth:expr, $w:expr) => {
        Model {
            family: $fam,
            name: $name,
            product_type: $pt,
            capacities: $cap,
            colors: $col,
            part_prefix: $pp,
            year: $y,
            cellular: Cellular::$cell,
            ethernet: $eth,
            weight: $w,
        }
    };
}

/// The model table. Index 0..=5 are also used as per-family fallbacks for
/// devices loaded from a seed dataset (see [`family_fallback`]).
pub(crate) static MODELS: &[Model] = &[
    model!(
        "Mac",
        "MacBook Pro (14-inch, M4, 2024)",
        "Mac16,1",
        &["512GB", "1TB"],
        &["SPACE BLACK", "SILVER"],
        "MW2U",
        2024,
        Never,
        false,
        60
    ),
    model!(
        "iPhone",
        "iPhone 15",
        "iPhone15,4",
        &["128GB", "256GB", "512GB"],
        PHONE_COLORS,
        "MTLG",
        2023,
        Always,
        false,
        90
    ),
    model!(
        "iPad",
        "iPad (10th generation)",
        "iPad13,18",
        &["64GB", "256GB"],
        PAD_COLORS,
        "MPQ0",
        2022,
        Sometimes,
        false,
        70
    ),
    model!(
        "AppleTV",
        "Apple TV 4K (3rd generation)",
        "AppleTV14,1",
        &["64GB", "128GB"],
        &["BLACK"],
        "MN87",
        2022,
        Never,
        true,
        40
    ),
    model!(
        "Watch",
        "Apple Watch Series 9",
        "Watch7,3",
        &["64GB"],
        &["MIDNIGHT", "STARLIGHT", "SILVER", "PINK"],
        "MR8W",
        2023,
        Sometimes,
        false,
        25
    ),
    model!(
        "Vision",
        "Apple Vision Pro",
        "RealityDevice14,1",
        &["256GB", "512GB", "1TB"],
        &["SILVER"],
        "MW8X",
        2024,
        Never,
        false,
        10
    ),
    model!(
        "Mac",
        "MacBook Air (13-inch, M2, 2022)",
        "Mac14,2",
        &["256GB", "512GB", "1TB"],
        AIR_COLORS,
        "MLY3",
        2022,
        Never,
        false,
        60
    ),
    model!(
        "Mac",
        "MacBook Air (13-inch, M3, 2024)",
        "Mac15,12",
        &["256GB", "512GB"],
        AIR_COLORS,
        "MRXN",
        2024,
        Never,
        false,
        55
    ),
    model!(
        "Mac",
        "MacBook Air (15-inch, M3, 2024)",
        "Mac15,13",
        &["256GB", "512GB"],
        AIR_COLORS,
        "MRYM",
        2024,
        Never,
        false,
        25
    ),
    model!(
        "Mac",
        "MacBook Pro (14-inch, M3, Nov 2023)",
        "Mac15,3",
        &["512GB", "1TB"],
        MAC_COLORS,
        "MR7J",
        2023,
        Never,
        false,
        30
    ),
    model!(
        "Mac",
        "MacBook Pro (16-inch, M4 Pro, 2024)",
        "Mac16,7",
        &["512GB", "1TB", "2TB"],
        &["SPACE BLACK", "SILVER"],
        "MX2T",
        2024,
        Never,
        false,
        15
    ),
    model!(
        "Mac",
        "MacBook Pro (13-inch, M1, 2020)",
        "MacBookPro17,1",
        &["256GB", "512GB"],
        MAC_COLORS,
        "MYD8",
        2020,
        Never,
        false,
        20
    ),
    model!(
        "Mac",
        "iMac (24-inch, M3, 2023)",
        "Mac15,4",
        &["256GB", "512GB"],
        &["BLUE", "GREEN", "PINK", "SILVER"],
        "MQRC",
        2023,
        Never,
        true,
        15
    ),
    model!(
        "Mac",
        "Mac mini (2024)",
        "Mac16,10",
        &["256GB", "512GB"],
        &["SILVER"],
        "MU9D",
        2024,
        Never,
        true,
        12
    ),
    model!(
        "Mac",
        "Mac Studio (2023)",
        "Mac14,13",
        &["512GB", "1TB"],
        &["SILVER"],
        "MQH7",
        2023,
        Never,
        true,
        5
    ),
    model!(
        "Mac",
        "iMac 21.5\"",
        "iMac16,2",
        &["750GB", "1TB"],
        &["SILVER"],
        "FD31",
        2015,
        Never,
        true,
        3
    ),
    model!(
        "iPhone",
        "iPhone 13",
        "iPhone14,5",
        &["128GB", "256GB", "512GB"],
        &["MIDNIGHT", "STARLIGHT", "BLUE", "PINK", "(PRODUCT)RED"],
        "MLPF",
        2021,
        Always,
        false,
        45
    ),
    model!(
        "iPhone",
        "iPhone SE (3rd generation)",
        "iPhone14,6",
        &["64GB", "128GB"],
        &["MIDNIGHT", "STARLIGHT", "(PRODUCT)RED"],
        "MMXF",
        2022,
        Always,
        false,
        35
    ),
    model!(
        "iPhone",
        "iPhone 14",
        "iPhone14,7",
        &["128GB", "256GB"],
        &["MIDNIGHT", "STARLIGHT", "BLUE", "PURPLE"],
        "MPUF",
        2022,
        Always,
        false,
        60
    ),
    model!(
        "iPhone",
        "iPhone 15 Pro",
        "iPhone16,1",
        &["128GB", "256GB", "512GB"],
        PRO_PHONE_COLORS,
        "MTUV",
        2023,
        Always,
        false,
        45
    ),
    model!(
        "iPhone",
        "iPhone 16",
        "iPhone17,3",
        &["128GB", "256GB"],
        &["BLACK", "WHITE", "PINK", "TEAL", "ULTRAMARINE"],
        "MYE7",
        2024,
        Always,
        false,
        70
    ),
    model!(
        "iPhone",
        "iPhone 16 Pro",
        "iPhone17,1",
        &["128GB", "256GB", "512GB", "1TB"],
        PRO_PHONE_COLORS,
        "MYNE",
        2024,
        Always,
        false,
        40
    ),
    model!(
        "iPhone",
        "iPhone 17 Pro",
        "iPhone18,1",
        &["256GB", "512GB", "1TB"],
        &["COSMIC ORANGE", "DEEP BLUE", "SILVER"],
        "MG8E",
        2025,
        Always,
        false,
        20
    ),
    model!(
        "iPad",
        "iPad Air 11-inch (M2)",
        "iPad14,8",
        &["128GB", "256GB"],
        PAD_COLORS,
        "MUWD",
        2024,
        Sometimes,
        false,
        40
    ),
    model!(
        "iPad",
        "iPad Air 11-inch (M3)",
        "iPad15,3",
        &["128GB", "256GB", "512GB"],
        PAD_COLORS,
        "MC9X",
        2025,
        Sometimes,
        false,
        30
    ),
    model!(
        "iPad",
        "iPad Pro 11-inch (M4)",
        "iPad16,3",
        &["256GB", "512GB", "1TB"],
        &["SPACE BLACK", "SILVER"],
        "MVV8",
        2024,
        Sometimes,
        false,
        25
    ),
    model!(
        "iPad",
        "iPad mini (A17 Pro)",
        "iPad16,1",
        &["128GB", "256GB"],
        &["SPACE GRAY", "STARLIGHT", "BLUE", "PURPLE"],
        "MXN7",
        2024,
        Sometimes,
        false,
        20
    ),
    model!(
        "Watch",
        "Apple Watch Ultra 2",
        "Watch7,5",
        &["64GB"],
        &["NATURAL", "BLACK"],
        "MX4D",
        2023,
        Always,
        false,
        10
    ),
    model!(
        "Watch",
        "Apple Watch SE (2nd generation)",
        "Watch6,10",
        &["32GB"],
        &["MIDNIGHT", "STARLIGHT", "SILVER"],
        "MRE3",
        2022,
        Sometimes,
        false,
        10
    ),
    model!(
        "AppleTV",
        "Apple TV 4K (2nd generation)",
        "AppleTV11,1",
        &["32GB", "64GB"],
        &["BLACK"],
        "MXGY",
        2021,
        Never,
        true,
        15
    ),
];

/// Index of the per-family fallback model (used for seed-dataset devices whose
/// model is not in the table; their own strings override the rendering).
pub(crate) fn family_fallback(family: &str) -> u16 {
    MODELS
        .iter()
        .take(6)
        .position(|m| m.family == family)
        .unwrap_or(0) as u16
}

/// Names of generated device management services. \[guess\] realistic vendor-ish names.
pub(crate) const SERVER_NAMES: &[&str] = &[
    "Production MDM",
    "Jamf Pro - HQ",
    "Intune EMEA",
    "Kandji Retail",
    "Mosyle Field Devices",
    "Workspace ONE Labs",
    "Staging MDM",
    "Jamf School Pilot",
    "Addigy Contractors",
    "SimpleMDM Kiosks",
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "John", "Jane", "Elana", "Marco", "Aiko", "Priya", "Lukas", "Sofia", "Omar", "Chen", "Fatima",
    "Noah", "Mia", "Liam", "Ava", "Mateo", "Zara", "Ivan", "Leila", "Tom",
];
pub(crate) const LAST_NAMES: &[&str] = &[
    "Doe", "Landot", "Rossi", "Tanaka", "Patel", "Muller", "Garcia", "Haddad", "Wang", "Khan",
    "Smith", "Novak", "Silva", "Dubois", "Jensen", "Okafor", "Kowalski", "Nguyen", "Costa", "Berg",
];
pub(crate) const DEPARTMENTS: &[&str] = &[
    "IT",
    "Sales",
    "Marketing",
    "Finance",
    "Engineering",
    "Operations",
    "Retail",
    "Legal",
    "HR",
    "Support",
];

/// Real App Store apps (Adam id, name, bundle id, supported OS).
pub(crate) const APPS: &[(&str, &str, &str, &[&str])] = &[
    (
        "361309726",
        "Pages",
        "com.apple.Pages",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
    (
        "409201541",
        "Numbers",
        "com.apple.Numbers",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
    (
        "361285480",
        "Keynote",
        "com.apple.Keynote",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
    (
        "1274495053",
        "Microsoft Outlook",
        "com.microsoft.Outlook",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
    (
        "803453959",
        "Slack",
        "com.tinyspeck.chatlyio",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_IPADOS"],
    ),
    (
        "546505307",
        "Zoom Workplace",
        "us.zoom.videomeetings",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_IPADOS"],
    ),
    (
        "1295203466",
        "Microsoft Teams",
        "com.microsoft.skype.teams",
        &["SUPPORTED_OS_IOS"],
    ),
    (
        "284882215",
        "Facebook",
        "com.facebook.Facebook",
        &["SUPPORTED_OS_IOS"],
    ),
    (
        "1091189122",
        "Bear",
        "net.shinyfrog.bear-iOS",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
    (
        "1176895641",
        "Spark Mail",
        "com.readdle.smartemail",
        &["SUPPORTED_OS_IOS", "SUPPORTED_OS_MACOS"],
    ),
];
