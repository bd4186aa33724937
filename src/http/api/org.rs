//! `/api/v1/members` and `/api/v1/departments`: the org as synchronised from WeCom (read only).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Auth;
use super::problem::Problem;
use super::problem::responses::Unauthorized;
use super::time;
use crate::crm::listing;
use crate::crm::members::parse_list;
use crate::http::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub userid: String,
    pub name: String,
    pub position: String,
    /// Still in the org (members who left keep their history).
    pub active: bool,
    pub main_department: Option<i64>,
    pub departments: Vec<i64>,
    /// The departments they lead.
    pub leads: Vec<i64>,
    pub left_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Department {
    pub id: i64,
    pub name: String,
    /// 0 for the top department.
    pub parent_id: i64,
    pub leaders: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<Member>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentList {
    pub items: Vec<Department>,
}

/// List members
///
/// Every member (an admin token), or the members of the departments a manager leads.
#[utoipa::path(
    get,
    path = "/members",
    operation_id = "listMembers",
    tag = "org",
    responses(
        (status = 200, description = "OK", body = MemberList),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn members(State(state): State<AppState>, auth: Auth) -> Result<Json<MemberList>, Problem> {
    let tz = state.config.org.tz();
    let items = listing::members(&state.db, &auth.scope)
        .await?
        .into_iter()
        .map(|m| Member {
            userid: m.member.userid,
            name: m.member.name,
            position: m.member.position,
            active: m.member.active,
            main_department: m.member.main_department,
            departments: m.departments,
            leads: m.leads,
            left_at: m.member.left_at.map(|t| time(t, tz)),
        })
        .collect();
    Ok(Json(MemberList { items }))
}

/// List departments
///
/// Every department (an admin token), or those a manager's members belong to.
#[utoipa::path(
    get,
    path = "/departments",
    operation_id = "listDepartments",
    tag = "org",
    responses(
        (status = 200, description = "OK", body = DepartmentList),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn departments(State(state): State<AppState>, auth: Auth) -> Result<Json<DepartmentList>, Problem> {
    let items = listing::departments(&state.db, &auth.scope)
        .await?
        .into_iter()
        .map(|d| Department {
            leaders: parse_list(&d.leaders),
            id: d.id,
            name: d.name,
            parent_id: d.parent_id,
        })
        .collect();
    Ok(Json(DepartmentList { items }))
}
