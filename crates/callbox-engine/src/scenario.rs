//! Running a scenario over HTTP: the core's [`ScenarioRun`] decides, this module sends.

use callbox_core::request::HttpRequest;
use callbox_core::run::{HttpResponse, RunError, RunInput, RunOutcome, ScenarioRun};

use callbox_core::template::{Integration, ScenarioId};

use crate::http::{HttpClient, HttpError};

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The template logic failed (bad render, CRM error status…).
    #[error(transparent)]
    Run(#[from] RunError),
    /// A request got no usable response.
    #[error("request {request}: {source}")]
    Http {
        /// Request name.
        request: String,
        /// The transport problem.
        source: HttpError,
    },
}

/// A run's result: what happened up to the end or to the failure.
#[derive(Debug)]
pub struct RunReport {
    /// Requests made, outputs and contacts gathered (partial when `error` is set).
    pub outcome: RunOutcome,
    /// What stopped the run, if anything.
    pub error: Option<ScenarioError>,
}

/// Runs `scenario` against the CRM.
pub async fn run_scenario(
    integration: &Integration,
    scenario: &ScenarioId,
    input: RunInput,
    client: &HttpClient,
) -> Result<RunReport, RunError> {
    let mut run = ScenarioRun::new(integration, scenario, input)?;
    loop {
        let request = match run.next_request() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Ok(failed(run, e.into())),
        };
        match client.send(&request).await {
            Ok(response) => {
                if let Err(e) = run.handle_response(&response) {
                    return Ok(failed(run, e.into()));
                }
            }
            Err(source) => {
                let name = run
                    .outcome()
                    .requests
                    .last()
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                return Ok(failed(
                    run,
                    ScenarioError::Http {
                        request: name,
                        source,
                    },
                ));
            }
        }
    }
    let error = run.finish().err().map(ScenarioError::from);
    Ok(RunReport {
        outcome: run.into_outcome(),
        error,
    })
}

fn failed(run: ScenarioRun<'_>, error: ScenarioError) -> RunReport {
    RunReport {
        outcome: run.into_outcome(),
        error: Some(error),
    }
}

/// A request a dry run would send.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DryRunRequest {
    /// Scenario of the request (GetGlobalInfo, the scenario, Common).
    pub scenario: String,
    /// Request name.
    pub name: String,
    /// The request, or `None` when its URL renders empty (skipped).
    pub request: Option<HttpRequest>,
}

/// Builds the requests a run would send, without sending anything: every response is taken
/// as an empty JSON object, so outputs stay empty and `Next` chains do not run.
pub fn dry_run(
    integration: &Integration,
    scenario: &ScenarioId,
    input: RunInput,
) -> Result<Vec<DryRunRequest>, RunError> {
    let mut run = ScenarioRun::new(integration, scenario, input)?;
    let mut requests = Vec::new();
    let mut seen = 0;
    loop {
        let next = run.next_request()?;
        // Skipped requests are recorded without being handed out.
        for record in &run.outcome().requests[seen..] {
            if record.skipped {
                requests.push(DryRunRequest {
                    scenario: record.scenario.clone(),
                    name: record.name.clone(),
                    request: None,
                });
            }
        }
        seen = run.outcome().requests.len();
        let Some(request) = next else { break };
        let record = run.outcome().requests.last().cloned().unwrap_or_default();
        requests.push(DryRunRequest {
            scenario: record.scenario,
            name: record.name,
            request: Some(request),
        });
        run.handle_response(&HttpResponse {
            status: 200,
            body: "{}".into(),
            ..HttpResponse::default()
        })?;
    }
    Ok(requests)
}
