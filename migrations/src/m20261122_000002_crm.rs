//! The CRM: the org (departments, members), customers and the members who follow them, lead
//! channels, follow-ups, reminders, the audit log, the notification outbox, run records of periodic
//! jobs (their unique key makes a job run once per period whatever the number of instances), and a
//! small key/value table for resumable work. Times are unix milliseconds; lists are JSON text.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
    Name,
    ParentId,
    Leaders,
    SortOrder,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Userid,
    Name,
    Position,
    MainDepartment,
    Status,
    Active,
    DirectLeaders,
    LeftAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MemberDepartments {
    Table,
    Userid,
    DepartmentId,
    IsLeader,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    ExternalUserid,
    Name,
    ContactType,
    Avatar,
    Gender,
    Unionid,
    CorpName,
    CorpFullName,
    Position,
    OwnerUserid,
    FirstState,
    FirstAddedBy,
    FirstAddedAt,
    Stage,
    LeadStatus,
    Rating,
    Tags,
    Score,
    Pending,
    AtRisk,
    AtRiskReason,
    AtRiskSince,
    SearchText,
    LastFollowUpAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Followers {
    Table,
    Id,
    CustomerId,
    Userid,
    Remark,
    Description,
    RemarkCorpName,
    RemarkMobiles,
    WecomTags,
    AddWay,
    OperUserid,
    State,
    AddedAt,
    RemovedAt,
    RemovedBy,
    SearchText,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    State,
    Name,
    WelcomeTemplate,
    FollowUpPlan,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FollowUps {
    Table,
    Id,
    CustomerId,
    AuthorUserid,
    Content,
    Kind,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Reminders {
    Table,
    Id,
    CustomerId,
    OwnerUserid,
    CreatedBy,
    Text,
    DueAt,
    Status,
    Source,
    DeliveryState,
    ClaimedBy,
    LeaseUntil,
    SentAt,
    Msgid,
    Attempts,
    LastError,
    DoneAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    CustomerId,
    MemberUserid,
    Detail,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    DedupeKey,
    Recipient,
    Body,
    Status,
    Attempts,
    NextAttemptAt,
    LockedBy,
    LockedUntil,
    Msgid,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    Job,
    Scope,
    Period,
    Status,
    Detail,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum KvState {
    Table,
    Key,
    Value,
    UpdatedAt,
}

fn id<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn text_default<T: Iden + 'static>(col: T, default: &str) -> ColumnDef {
    ColumnDef::new(col).text().not_null().default(default).to_owned()
}

fn string<T: Iden + 'static>(col: T, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().default("").to_owned()
}

fn millis<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn optional_millis<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

fn index(name: &str, table: impl Iden + 'static, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(Alias::new(*col));
    }
    if unique {
        index.unique();
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Departments::Table)
                    .col(ColumnDef::new(Departments::Id).big_integer().not_null().primary_key())
                    .col(string(Departments::Name, 128))
                    .col(
                        ColumnDef::new(Departments::ParentId)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(text_default(Departments::Leaders, "[]"))
                    .col(
                        ColumnDef::new(Departments::SortOrder)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(millis(Departments::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(ColumnDef::new(Members::Userid).string_len(64).not_null().primary_key())
                    .col(string(Members::Name, 128))
                    .col(string(Members::Position, 128))
                    .col(ColumnDef::new(Members::MainDepartment).big_integer().null())
                    .col(ColumnDef::new(Members::Status).integer().not_null().default(1))
                    .col(ColumnDef::new(Members::Active).boolean().not_null().default(true))
                    .col(text_default(Members::DirectLeaders, "[]"))
                    .col(optional_millis(Members::LeftAt))
                    .col(millis(Members::CreatedAt))
                    .col(millis(Members::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberDepartments::Table)
                    .col(ColumnDef::new(MemberDepartments::Userid).string_len(64).not_null())
                    .col(ColumnDef::new(MemberDepartments::DepartmentId).big_integer().not_null())
                    .col(
                        ColumnDef::new(MemberDepartments::IsLeader)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .primary_key(
                        Index::create()
                            .col(MemberDepartments::Userid)
                            .col(MemberDepartments::DepartmentId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_member_departments_department",
                MemberDepartments::Table,
                &["department_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(id(Customers::Id))
                    .col(ColumnDef::new(Customers::ExternalUserid).string_len(64).not_null())
                    .col(string(Customers::Name, 128))
                    .col(ColumnDef::new(Customers::ContactType).integer().not_null().default(0))
                    .col(text_default(Customers::Avatar, ""))
                    .col(ColumnDef::new(Customers::Gender).integer().not_null().default(0))
                    .col(string(Customers::Unionid, 64))
                    .col(string(Customers::CorpName, 128))
                    .col(string(Customers::CorpFullName, 256))
                    .col(string(Customers::Position, 128))
                    .col(ColumnDef::new(Customers::OwnerUserid).string_len(64).null())
                    .col(ColumnDef::new(Customers::FirstState).string_len(64).null())
                    .col(ColumnDef::new(Customers::FirstAddedBy).string_len(64).null())
                    .col(optional_millis(Customers::FirstAddedAt))
                    .col(ColumnDef::new(Customers::Stage).string_len(32).null())
                    .col(ColumnDef::new(Customers::LeadStatus).string_len(32).null())
                    .col(ColumnDef::new(Customers::Rating).string_len(8).null())
                    .col(text_default(Customers::Tags, "[]"))
                    .col(ColumnDef::new(Customers::Score).integer().not_null().default(0))
                    .col(ColumnDef::new(Customers::Pending).boolean().not_null().default(false))
                    .col(ColumnDef::new(Customers::AtRisk).boolean().not_null().default(false))
                    .col(ColumnDef::new(Customers::AtRiskReason).text().null())
                    .col(optional_millis(Customers::AtRiskSince))
                    .col(text_default(Customers::SearchText, ""))
                    .col(optional_millis(Customers::LastFollowUpAt))
                    .col(millis(Customers::CreatedAt))
                    .col(millis(Customers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_customers_external_userid",
                Customers::Table,
                &["external_userid"],
                true,
            ))
            .await?;
        manager
            .create_index(index("ix_customers_owner", Customers::Table, &["owner_userid"], false))
            .await?;
        manager
            .create_index(index("ix_customers_updated", Customers::Table, &["updated_at"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Followers::Table)
                    .col(id(Followers::Id))
                    .col(ColumnDef::new(Followers::CustomerId).big_integer().not_null())
                    .col(ColumnDef::new(Followers::Userid).string_len(64).not_null())
                    .col(string(Followers::Remark, 128))
                    .col(text_default(Followers::Description, ""))
                    .col(string(Followers::RemarkCorpName, 128))
                    .col(text_default(Followers::RemarkMobiles, "[]"))
                    .col(text_default(Followers::WecomTags, "[]"))
                    .col(ColumnDef::new(Followers::AddWay).integer().not_null().default(0))
                    .col(string(Followers::OperUserid, 64))
                    .col(string(Followers::State, 64))
                    .col(optional_millis(Followers::AddedAt))
                    .col(optional_millis(Followers::RemovedAt))
                    .col(ColumnDef::new(Followers::RemovedBy).string_len(16).null())
                    .col(text_default(Followers::SearchText, ""))
                    .col(millis(Followers::CreatedAt))
                    .col(millis(Followers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_followers_customer")
                            .from(Followers::Table, Followers::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_followers_customer_userid",
                Followers::Table,
                &["customer_id", "userid"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_followers_userid",
                Followers::Table,
                &["userid", "removed_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .col(id(Channels::Id))
                    .col(ColumnDef::new(Channels::State).string_len(64).not_null())
                    .col(string(Channels::Name, 128))
                    .col(ColumnDef::new(Channels::WelcomeTemplate).text().null())
                    .col(ColumnDef::new(Channels::FollowUpPlan).string_len(64).null())
                    .col(millis(Channels::CreatedAt))
                    .col(millis(Channels::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_channels_state", Channels::Table, &["state"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FollowUps::Table)
                    .col(id(FollowUps::Id))
                    .col(ColumnDef::new(FollowUps::CustomerId).big_integer().not_null())
                    .col(ColumnDef::new(FollowUps::AuthorUserid).string_len(64).not_null())
                    .col(ColumnDef::new(FollowUps::Content).text().not_null())
                    .col(
                        ColumnDef::new(FollowUps::Kind)
                            .string_len(16)
                            .not_null()
                            .default("note"),
                    )
                    .col(millis(FollowUps::CreatedAt))
                    .col(optional_millis(FollowUps::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_follow_ups_customer")
                            .from(FollowUps::Table, FollowUps::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_follow_ups_customer",
                FollowUps::Table,
                &["customer_id", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_follow_ups_author",
                FollowUps::Table,
                &["author_userid", "created_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reminders::Table)
                    .col(id(Reminders::Id))
                    .col(ColumnDef::new(Reminders::CustomerId).big_integer().null())
                    .col(ColumnDef::new(Reminders::OwnerUserid).string_len(64).not_null())
                    .col(string(Reminders::CreatedBy, 64))
                    .col(ColumnDef::new(Reminders::Text).text().not_null())
                    .col(millis(Reminders::DueAt))
                    .col(
                        ColumnDef::new(Reminders::Status)
                            .string_len(16)
                            .not_null()
                            .default("open"),
                    )
                    .col(
                        ColumnDef::new(Reminders::Source)
                            .string_len(16)
                            .not_null()
                            .default("manual"),
                    )
                    .col(
                        ColumnDef::new(Reminders::DeliveryState)
                            .string_len(16)
                            .not_null()
                            .default("pending"),
                    )
                    .col(ColumnDef::new(Reminders::ClaimedBy).string_len(64).null())
                    .col(optional_millis(Reminders::LeaseUntil))
                    .col(optional_millis(Reminders::SentAt))
                    .col(ColumnDef::new(Reminders::Msgid).string_len(128).null())
                    .col(ColumnDef::new(Reminders::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Reminders::LastError).text().null())
                    .col(optional_millis(Reminders::DoneAt))
                    .col(millis(Reminders::CreatedAt))
                    .col(millis(Reminders::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reminders_customer")
                            .from(Reminders::Table, Reminders::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_reminders_due",
                Reminders::Table,
                &["status", "delivery_state", "due_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_reminders_owner",
                Reminders::Table,
                &["owner_userid", "status", "due_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_reminders_customer",
                Reminders::Table,
                &["customer_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(id(AuditLog::Id))
                    .col(millis(AuditLog::At))
                    .col(string(AuditLog::Actor, 64))
                    .col(string(AuditLog::Action, 64))
                    .col(ColumnDef::new(AuditLog::CustomerId).big_integer().null())
                    .col(ColumnDef::new(AuditLog::MemberUserid).string_len(64).null())
                    .col(text_default(AuditLog::Detail, "{}"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_audit_customer",
                AuditLog::Table,
                &["customer_id", "at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_audit_member",
                AuditLog::Table,
                &["member_userid", "at"],
                false,
            ))
            .await?;
        manager
            .create_index(index("ix_audit_at", AuditLog::Table, &["at"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(id(Outbox::Id))
                    .col(ColumnDef::new(Outbox::DedupeKey).string_len(160).not_null())
                    .col(ColumnDef::new(Outbox::Recipient).string_len(64).not_null())
                    .col(ColumnDef::new(Outbox::Body).text().not_null())
                    .col(ColumnDef::new(Outbox::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Outbox::Attempts).integer().not_null().default(0))
                    .col(millis(Outbox::NextAttemptAt))
                    .col(ColumnDef::new(Outbox::LockedBy).string_len(64).null())
                    .col(optional_millis(Outbox::LockedUntil))
                    .col(ColumnDef::new(Outbox::Msgid).string_len(128).null())
                    .col(ColumnDef::new(Outbox::LastError).text().null())
                    .col(millis(Outbox::CreatedAt))
                    .col(optional_millis(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_outbox_dedupe_key", Outbox::Table, &["dedupe_key"], true))
            .await?;
        manager
            .create_index(index(
                "ix_outbox_status_next",
                Outbox::Table,
                &["status", "next_attempt_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobRuns::Table)
                    .col(id(JobRuns::Id))
                    .col(ColumnDef::new(JobRuns::Job).string_len(64).not_null())
                    .col(string(JobRuns::Scope, 128))
                    .col(ColumnDef::new(JobRuns::Period).string_len(32).not_null())
                    .col(ColumnDef::new(JobRuns::Status).string_len(16).not_null())
                    .col(ColumnDef::new(JobRuns::Detail).text().null())
                    .col(millis(JobRuns::CreatedAt))
                    .col(optional_millis(JobRuns::FinishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_job_runs", JobRuns::Table, &["job", "scope", "period"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KvState::Table)
                    .col(ColumnDef::new(KvState::Key).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(KvState::Value).text().not_null())
                    .col(millis(KvState::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            KvState::Table.into_iden(),
            JobRuns::Table.into_iden(),
            Outbox::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Reminders::Table.into_iden(),
            FollowUps::Table.into_iden(),
            Channels::Table.into_iden(),
            Followers::Table.into_iden(),
            Customers::Table.into_iden(),
            MemberDepartments::Table.into_iden(),
            Members::Table.into_iden(),
            Departments::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
