//! The data a fake WeCom serves: the corp's credentials, departments (with leaders), members, and
//! external contacts with the members who follow them. JSON, in the shapes WeCom's API returns.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::wecom::api::types::{Department, ExternalContactDetail, Member};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    pub corp_id: String,
    pub agent_id: i64,
    /// The app secret `gettoken` accepts.
    pub secret: String,
    /// Callback Token and EncodingAESKey, for the callbacks the fake sends.
    pub token: String,
    pub encoding_aes_key: String,
    #[serde(default)]
    pub departments: Vec<Department>,
    #[serde(default)]
    pub members: Vec<FixtureMember>,
    /// Customers and who follows them. One followed by nobody is a prospect: WeCom knows them, and
    /// an add event for them (e.g. from `simulate`) finds their profile.
    #[serde(default)]
    pub external_contacts: Vec<ExternalContactDetail>,
    /// Lead channels the demo sets up (ignored by the fake itself).
    #[serde(default)]
    pub channels: Vec<crate::config::ChannelSeed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixtureMember {
    #[serde(flatten)]
    pub member: Member,
    /// Has 客户联系 (customer contact) enabled: listed by `get_follow_user_list`.
    #[serde(default = "yes")]
    pub customer_contact: bool,
}

impl FixtureMember {
    /// An active member of one department with customer contact enabled.
    pub fn new(userid: impl Into<String>, name: impl Into<String>, department: i64, leader: bool) -> Self {
        FixtureMember {
            member: Member {
                userid: userid.into(),
                name: name.into(),
                department: vec![department],
                is_leader_in_dept: vec![i32::from(leader)],
                main_department: department,
                status: 1,
                ..Default::default()
            },
            customer_contact: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The fixture of `wecom-scrm demo`: a small sales team with customers.
pub const DEMO_FIXTURE: &str = include_str!("../../../config/demo/fixture.json");

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("fixture {path} is not valid: {source}")]
    Parse { path: String, source: serde_json::Error },
}

impl Fixture {
    pub fn demo() -> Self {
        serde_json::from_str(DEMO_FIXTURE).expect("the bundled demo fixture is valid")
    }

    pub fn load(path: &Path) -> Result<Self, FixtureError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| FixtureError::Parse { path: shown, source })
    }

    /// A fixture with the given credentials and nothing else, for tests to fill in.
    pub fn empty(corp_id: &str, agent_id: i64, secret: &str, token: &str, encoding_aes_key: &str) -> Self {
        Self {
            corp_id: corp_id.into(),
            agent_id,
            secret: secret.into(),
            token: token.into(),
            encoding_aes_key: encoding_aes_key.into(),
            departments: Vec::new(),
            members: Vec::new(),
            external_contacts: Vec::new(),
            channels: Vec::new(),
        }
    }
}
