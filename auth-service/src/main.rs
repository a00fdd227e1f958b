use auth_service::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    shared::telemetry::init_tracing(config.common.log_format);
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "auth-service listening");
    app.run_until_stopped().await?;
    Ok(())
}
