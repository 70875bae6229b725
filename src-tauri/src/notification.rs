//! The incoming-call notification: caller name, company and number, with Answer and Decline.
//! Desktop notifications go through the freedesktop D-Bus service (notify-rust); without a
//! notification daemon the request fails quietly and the window and tray still show the call.
//! The notification lives as long as the call rings.

use std::collections::HashMap;

use callbox_desk::{CallPhase, CallView, Desk, DeskEvent};
use notify_rust::NotificationResponse;
use tokio::sync::broadcast;

/// How long a ringing call's notification waits for the CRM's answer (the caller's name and
/// company) before it shows what is known; a slower answer updates it.
pub const LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Where each ringing call's notification stands, so that it is shown once per call: at once
/// when the caller is known (or known to be unknown), after [`LOOKUP_WAIT`] while the CRM is
/// asked. Calls are forgotten when they end.
#[derive(Debug, Default)]
pub struct Announcements(HashMap<String, Stage>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the CRM's answer, or for [`LOOKUP_WAIT`] to pass.
    Waiting,
    /// Shown (a call that stops ringing while waiting stays `Waiting` until it ends).
    Shown,
}

/// What to do about a ringing call's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Show it now.
    Now,
    /// Wait [`LOOKUP_WAIT`], then ask [`Announcements::waited`].
    AfterWait,
    /// It is shown, or its wait has begun.
    Nothing,
}

impl Announcements {
    /// A ringing inbound call was seen, its caller still being looked up or not.
    pub fn ringing(&mut self, call_id: &str, looking_up: bool) -> Announce {
        match (self.0.get(call_id), looking_up) {
            (Some(Stage::Shown), _) | (Some(Stage::Waiting), true) => Announce::Nothing,
            (None, true) => {
                self.0.insert(call_id.to_owned(), Stage::Waiting);
                Announce::AfterWait
            }
            (_, false) => {
                self.0.insert(call_id.to_owned(), Stage::Shown);
                Announce::Now
            }
        }
    }

    /// The wait for the CRM is over: true when the notification is still to be shown (the
    /// answer did not come in the meantime).
    pub fn waited(&mut self, call_id: &str) -> bool {
        match self.0.get_mut(call_id) {
            Some(stage @ Stage::Waiting) => {
                *stage = Stage::Shown;
                true
            }
            _ => false,
        }
    }

    /// The call ended.
    pub fn ended(&mut self, call_id: &str) {
        self.0.remove(call_id);
    }

    /// How many calls are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no call is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

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
/// declined, ended or unknown). When the event stream lags, the desk's snapshot stands in for
/// the events missed.
async fn while_ringing(
    desk: &Desk,
    events: &mut broadcast::Receiver<DeskEvent>,
    call_id: &str,
    mut shown: (String, String),
    id: u32,
) {
    let current = |desk: &Desk| desk.snapshot().calls.into_iter().find(|c| c.id == call_id);
    // A change between the text's making and the subscription is in the snapshot.
    let mut call = current(desk);
    loop {
        let Some(now) = call.take().filter(|c| c.phase == CallPhase::Ringing) else {
            return;
        };
        let text = text(&now);
        if text != shown {
            shown = text;
            match notification(&shown.0, &shown.1).id(id).show_async().await {
                Ok(_) => tracing::info!(call = %call_id, "incoming-call notification updated"),
                Err(error) => tracing::warn!(%error, "the notification could not be updated"),
            }
        }
        call = loop {
            match events.recv().await {
                Ok(DeskEvent::Call { call }) if call.id == call_id => break Some(call),
                Ok(DeskEvent::CallEnded { call }) if call.id == call_id => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => break current(desk),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_caller_is_announced_at_once_and_only_once() {
        let mut announcements = Announcements::default();
        assert_eq!(announcements.ringing("c1", false), Announce::Now);
        assert_eq!(announcements.ringing("c1", false), Announce::Nothing);
        assert!(!announcements.waited("c1"), "no wait was begun");
    }

    #[test]
    fn a_looked_up_caller_waits_and_the_wait_shows_it_once() {
        let mut announcements = Announcements::default();
        assert_eq!(announcements.ringing("c1", true), Announce::AfterWait);
        assert_eq!(
            announcements.ringing("c1", true),
            Announce::Nothing,
            "one wait per call"
        );
        assert!(announcements.waited("c1"));
        assert!(!announcements.waited("c1"));
        assert_eq!(announcements.ringing("c1", false), Announce::Nothing);
    }

    #[test]
    fn the_crm_answering_during_the_wait_shows_it_then_and_the_wait_does_not() {
        let mut announcements = Announcements::default();
        assert_eq!(announcements.ringing("c1", true), Announce::AfterWait);
        assert_eq!(announcements.ringing("c1", false), Announce::Now);
        assert!(!announcements.waited("c1"), "shown once, not twice");
    }

    #[test]
    fn calls_are_apart_and_forgotten_when_they_end() {
        let mut announcements = Announcements::default();
        assert_eq!(announcements.ringing("c1", false), Announce::Now);
        assert_eq!(announcements.ringing("c2", true), Announce::AfterWait);
        assert_eq!(announcements.len(), 2);
        announcements.ended("c1");
        announcements.ended("c2");
        assert!(announcements.is_empty());
        assert!(
            !announcements.waited("c2"),
            "an ended call's wait shows nothing"
        );
    }
}
