//! The areas whose pages are not built yet. Each route renders a plain statement of what
//! will be there, so nobody mistakes an empty page for a broken one.

use leptos::prelude::*;
use leptos_meta::Title;

/// A part of Orchard, its route and what it will do.
pub struct Area {
    pub path: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
}

pub const AREAS: [Area; 8] = [
    Area {
        path: "/devices",
        title: "Devices",
        summary: "Search every device by serial number while you type, filter, sort, export \
                  CSV and open a device's full record.",
    },
    Area {
        path: "/assign",
        title: "Assign devices",
        summary: "Assign or unassign devices in bulk: paste serials or upload a CSV, preview \
                  exactly what changes, confirm once and follow each serial's result.",
    },
    Area {
        path: "/blueprints",
        title: "Blueprints",
        summary: "Edit Blueprints and their apps, configurations, packages, devices, users and \
                  groups, with the exact change shown before it is saved.",
    },
    Area {
        path: "/configurations",
        title: "Configurations",
        summary: "Edit custom-setting configurations with plist validation and readable errors.",
    },
    Area {
        path: "/directory",
        title: "Directory",
        summary: "Users, user groups, apps and packages: searchable and cross-linked.",
    },
    Area {
        path: "/audit",
        title: "Audit",
        summary: "Apple's audit events merged with Orchard's own actions, by day, with filters \
                  and export.",
    },
    Area {
        path: "/fleet",
        title: "Fleet",
        summary: "Charts of the fleet by product family, model and service, devices added and \
                  released per month, and AppleCare expiring soon.",
    },
    Area {
        path: "/settings",
        title: "Settings",
        summary: "Apple API accounts per organization, Orchard users and roles, single sign-on \
                  and API tokens.",
    },
];

/// Renders the "not built yet" page of the area at `path`.
#[component]
pub fn AreaPage(path: &'static str) -> impl IntoView {
    let area = AREAS
        .iter()
        .find(|a| a.path == path)
        .expect("every routed area is listed in AREAS");
    view! {
        <Title text=format!("{} · Orchard", area.title)/>
        <h1>{area.title}</h1>
        <p class="lede">{area.summary}</p>
        <p class="notice" role="status">
            "This page is not built yet. It arrives with the features described above."
        </p>
    }
}
