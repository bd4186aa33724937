//! Leads that find an owner and never rot: the pool (公海) state on a customer, the clocks the
//! recycle rules read (since when the owner has it, when its stage last moved), its segment, the
//! channel's assignment rule, and the audit of every assignment, claim, return and recycle (with whether the rep it concerns
//! has been told yet).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Customers {
    Table,
    PooledAt,
    PoolReason,
    PreviousOwner,
    OwnerSince,
    StageMovedAt,
    RecycleWarnedAt,
    Segment,
    Score,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Assign,
}

#[derive(DeriveIden)]
enum LeadAssignments {
    Table,
    Id,
    CustomerId,
    Userid,
    PreviousOwner,
    Action,
    Method,
    Reason,
    Actor,
    At,
    Notified,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        let columns = [
            ColumnDef::new(Customers::PooledAt).big_integer().null().to_owned(),
            ColumnDef::new(Customers::PoolReason).text().null().to_owned(),
            ColumnDef::new(Customers::PreviousOwner).string().null().to_owned(),
            ColumnDef::new(Customers::OwnerSince).big_integer().null().to_owned(),
            ColumnDef::new(Customers::StageMovedAt).big_integer().null().to_owned(),
            ColumnDef::new(Customers::RecycleWarnedAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Customers::Segment).string().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customers::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .add_column(ColumnDef::new(Channels::Assign).text().null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_customers_pooled", vec![Customers::PooledAt]),
            ("ix_customers_segment_score", vec![Customers::Segment, Customers::Score]),
            ("ix_customers_score", vec![Customers::Score]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Customers::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(LeadAssignments::Table)
                    .col(
                        ColumnDef::new(LeadAssignments::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LeadAssignments::CustomerId).big_integer().not_null())
                    .col(ColumnDef::new(LeadAssignments::Userid).string().null())
                    .col(ColumnDef::new(LeadAssignments::PreviousOwner).string().null())
                    .col(ColumnDef::new(LeadAssignments::Action).string().not_null())
                    .col(ColumnDef::new(LeadAssignments::Method).string().null())
                    .col(ColumnDef::new(LeadAssignments::Reason).text().null())
                    .col(ColumnDef::new(LeadAssignments::Actor).string().not_null())
                    .col(ColumnDef::new(LeadAssignments::At).big_integer().not_null())
                    .col(
                        ColumnDef::new(LeadAssignments::Notified)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_assignments_member")
                    .table(LeadAssignments::Table)
                    .col(LeadAssignments::Userid)
                    .col(LeadAssignments::Action)
                    .col(LeadAssignments::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_assignments_notified")
                    .table(LeadAssignments::Table)
                    .col(LeadAssignments::Notified)
                    .col(LeadAssignments::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_assignments_customer")
                    .table(LeadAssignments::Table)
                    .col(LeadAssignments::CustomerId)
                    .col(LeadAssignments::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LeadAssignments::Table).to_owned())
            .await?;
        for name in [
            "ix_customers_pooled",
            "ix_customers_segment_score",
            "ix_customers_score",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Customers::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .drop_column(Channels::Assign)
                    .to_owned(),
            )
            .await?;
        for column in [
            Customers::PooledAt,
            Customers::PoolReason,
            Customers::PreviousOwner,
            Customers::OwnerSince,
            Customers::StageMovedAt,
            Customers::RecycleWarnedAt,
            Customers::Segment,
        ] {
            manager
                .alter_table(Table::alter().table(Customers::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
