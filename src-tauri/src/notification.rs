//! The incoming-call notification: caller name, company and number, with Answer and Decline.
//! Desktop notifications go through the freedesktop D-Bus service (notify-rust); without a
//! notification daemon the request fails quietly and the window and tray still show the call.

use callbox_desk::{CallView, Desk};

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

/// Asks the desktop to show the notification; Answer and Decline act on the call.
pub fn incoming(desk: &Desk, call: &CallView, show_window: impl Fn() + Send + 'static) {
    let (title, body) = text(call);
    tracing::info!(call = %call.id, %title, body = %body.replace('\n', " / "), "incoming-call notification requested");
    let desk = desk.clone();
    let call_id = call.id.clone();
    std::thread::spawn(move || {
        let shown = notify_rust::Notification::new()
            .appname("Callbox")
            .summary(&title)
            .body(&body)
            .icon("call-start")
            .action("answer", "Answer")
            .action("decline", "Decline")
            .hint(notify_rust::Hint::Category("call.incoming".into()))
            .timeout(notify_rust::Timeout::Never)
            .show();
        match shown {
            Ok(handle) => handle.wait_for_action(|action| match action {
                "answer" => {
                    let _ = desk.answer(&call_id);
                    show_window();
                }
                "decline" => {
                    let _ = desk.decline(&call_id);
                }
                "default" => show_window(),
                _ => {}
            }),
            Err(error) => tracing::info!(%error, "no notification service"),
        }
    });
}
