//! All three shop services in one process, for local runs: each through its library entry point,
//! on its usual port, sharing one MongoDB client.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let auth = auth_service::Config::from_env()?;
    let product = product_service::Config::from_env()?;
    let order = order_service::Config::from_env()?;
    shared::telemetry::init_tracing(auth.common.log_format);
    let mongo = shared::mongo::connect(&auth.common, "shop").await?;

    let auth = auth_service::Application::build_with_client(auth, mongo.clone()).await?;
    let product = product_service::Application::build_with_client(product, mongo.clone()).await?;
    let order = order_service::Application::build_with_client(order, mongo).await?;
    tracing::info!(
        auth = auth.port(),
        product = product.port(),
        order = order.port(),
        "shop services listening"
    );
    let (a, p, o) = tokio::join!(
        auth.run_until_stopped(),
        product.run_until_stopped(),
        order.run_until_stopped()
    );
    a.context("auth-service")?;
    p.context("product-service")?;
    o.context("order-service")?;
    Ok(())
}
