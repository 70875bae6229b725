//! The incoming-call notification: caller name, company and number, with Answer and Decline.
//! Desktop notifications go through the freedesktop D-Bus service (notify-rust); without a
//! notification daemon the request fails quietly and the window and tray still show the call.
//! The notification lives as long as the call rings.

use callbox_desk::{CallPhase, CallView, Desk, DeskEvent};
use notify_rust::NotificationResponse;
use tokio::sync::broadcast;

/// The title and body of an incoming call's notification.
pub fn text(call: &CallView) -> (String, String) {
    let who = call
        .contact
        .as_ref()
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| call.network_name.clone())
        .unwrap_or_else(|| call.number.clone());
    let title = if call.waiting {
        format!("Call waiting: {who}")
    } else {
        format!("Incoming call: {who}")
    };
    let mut body = Vec::new();
    if let Some(company) = call
        .contact
        .as_ref()
        .map(|c| c.company.clone())
        .filter(|c| !c.is_empty())
    {
        body.push(company);
    }
    body.push(call.number.clone());
    (title, body.join("\n"))
}

/// The notification for `title` and `body`, with its actions.
fn notification(title: &str, body: &str) -> notify_rust::Notification {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("Callbox")
        .summary(title)
        .body(body)
        .icon("call-start")
        .action("default", "Show Callbox")
        .action("answer", "Answer")
        .action("decline", "Decline")
        .hint(notify_rust::Hint::Category("call.incoming".into()))
        .timeout(notify_rust::Timeout::Never);
    notification
}

/// Shows the notification until the call stops ringing: Answer and Decline act on the call,
/// clicking it shows the window, it is updated when the caller's name arrives after it was
/// shown (a slow CRM), and it closes by itself once the call is answered, declined or gone
/// anywhere else (the window, the tray, the caller hanging up).
pub async fn incoming(desk: Desk, call: CallView, show_window: impl Fn() + Send + 'static) {
    let shown_text = text(&call);
    // Subscribed before showing, so a change in between is not missed.
    let mut events = desk.subscribe();
    let handle = match notification(&shown_text.0, &shown_text.1)
        .show_async()
        .await
    {
        Ok(handle) => handle,
        Err(error) => {
            tracing::info!(%error, "no notification service");
            return;
        }
    };
    let id = handle.id();
    tracing::info!(call = %call.id, notification = id, "incoming-call notification shown");
    let call_id = call.id.clone();
    let acted = handle.wait_for_action_async(|response| match response {
        NotificationResponse::Action(action) if action == "answer" => {
            if let Err(error) = desk.answer(&call_id) {
                tracing::warn!(%error, "answer from the notification");
            }
            show_window();
        }
        NotificationResponse::Action(action) if action == "decline" => {
            if let Err(error) = desk.decline(&call_id) {
                tracing::warn!(%error, "decline from the notification");
            }
        }
        NotificationResponse::Default => show_window(),
        _ => {}
    });
    tokio::select! {
        () = acted => {}
        () = while_ringing(&desk, &mut events, &call.id, shown_text, id) => {
            handle.close_async().await;
            tracing::info!(call = %call.id, "incoming-call notification closed");
        }
    }
}

/// Keeps notification `id` up to date while the call rings (the caller's name and company
/// may arrive after it was shown); returns once the call no longer rings (answered,
/// declined, ended or unknown).
async fn while_ringing(
    desk: &Desk,
    events: &mut broadcast::Receiver<DeskEvent>,
    call_id: &str,
    mut shown: (String, String),
    id: u32,
) {
    let ringing = |desk: &Desk| {
        desk.snapshot()
            .calls
            .iter()
            .any(|c| c.id == call_id && c.phase == CallPhase::Ringing)
    };
    if !ringing(desk) {
        return;
    }
    loop {
        match events.recv().await {
            Ok(DeskEvent::Call { call }) if call.id == call_id => {
                if call.phase != CallPhase::Ringing {
                    return;
                }
                let now = text(&call);
                if now != shown {
                    shown = now;
                    let replaced = notification(&shown.0, &shown.1).id(id).show_async().await;
                    match replaced {
                        Ok(_) => {
                            tracing::info!(call = %call.id, "incoming-call notification updated")
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the notification could not be updated")
                        }
                    }
                }
            }
            Ok(DeskEvent::CallEnded { call }) if call.id == call_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !ringing(desk) {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
