//! Deals (商机): a customer has any number, each with an amount in whole fen, an expected close
//! date (`YYYY-MM-DD`, compared and grouped by month as text on both backends), a stage, an
//! optional win probability overriding the stage's, an owner and its life (open, won, lost); every
//! stage move in `deal_stages`; monthly targets per member or department in `sales_targets`.
//! Customers' stages become deals when the service starts (`crm::pipeline::backfill`), since which
//! stages are won and lost is configuration the schema does not know.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deals {
    Table,
    Id,
    CustomerId,
    OwnerUserid,
    Title,
    AmountFen,
    ExpectedClose,
    Stage,
    Probability,
    Status,
    LossReason,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum DealStages {
    Table,
    Id,
    DealId,
    FromStage,
    ToStage,
    Actor,
    At,
}

#[derive(DeriveIden)]
enum SalesTargets {
    Table,
    Id,
    Scope,
    ScopeId,
    Month,
    AmountFen,
    UpdatedAt,
}

fn id<T: Iden + 'static>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deals::Table)
                    .col(id(Deals::Id))
                    .col(ColumnDef::new(Deals::CustomerId).big_integer().not_null())
                    .col(ColumnDef::new(Deals::OwnerUserid).string().not_null())
                    .col(ColumnDef::new(Deals::Title).string().not_null())
                    .col(ColumnDef::new(Deals::AmountFen).big_integer().null())
                    .col(ColumnDef::new(Deals::ExpectedClose).string_len(10).null())
                    .col(ColumnDef::new(Deals::Stage).string().not_null())
                    .col(ColumnDef::new(Deals::Probability).small_integer().null())
                    .col(ColumnDef::new(Deals::Status).string_len(8).not_null())
                    .col(ColumnDef::new(Deals::LossReason).text().null())
                    .col(ColumnDef::new(Deals::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Deals::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Deals::ClosedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("ix_deals_customer", vec![Deals::CustomerId]),
            ("ix_deals_owner_status", vec![Deals::OwnerUserid, Deals::Status]),
            ("ix_deals_status_close", vec![Deals::Status, Deals::ExpectedClose]),
            ("ix_deals_closed", vec![Deals::ClosedAt]),
        ] {
            let mut index = Index::create().name(name).table(Deals::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(DealStages::Table)
                    .col(id(DealStages::Id))
                    .col(ColumnDef::new(DealStages::DealId).big_integer().not_null())
                    .col(ColumnDef::new(DealStages::FromStage).string().null())
                    .col(ColumnDef::new(DealStages::ToStage).string().not_null())
                    .col(ColumnDef::new(DealStages::Actor).string().not_null())
                    .col(ColumnDef::new(DealStages::At).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deal_stages_deal")
                    .table(DealStages::Table)
                    .col(DealStages::DealId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SalesTargets::Table)
                    .col(id(SalesTargets::Id))
                    .col(ColumnDef::new(SalesTargets::Scope).string_len(16).not_null())
                    .col(ColumnDef::new(SalesTargets::ScopeId).string().not_null())
                    .col(ColumnDef::new(SalesTargets::Month).string_len(7).not_null())
                    .col(ColumnDef::new(SalesTargets::AmountFen).big_integer().not_null())
                    .col(ColumnDef::new(SalesTargets::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_sales_targets_scope_month")
                    .table(SalesTargets::Table)
                    .col(SalesTargets::Scope)
                    .col(SalesTargets::ScopeId)
                    .col(SalesTargets::Month)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SalesTargets::Table.into_iden(),
            DealStages::Table.into_iden(),
            Deals::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
