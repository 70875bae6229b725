// The Callbox window: the callbox (status, dial pad and search, calls, recent calls) on the
// left, the CRM panel on the right. State comes from the desk (snapshot + events); every button
// is one command.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { commands, events, type SearchHit } from "./bindings";
import { dialString, formatNumber, formatterLoaded, loadFormatter } from "./format";
import { keyAction, SHORTCUTS, shortcutText } from "./keys";
import { Settings } from "./settings";
import {
  apply,
  callerName,
  type CallView,
  elapsed,
  finishedCalls,
  fromSnapshot,
  hookText,
  type HookView,
  initialState,
  type Message,
  type Presence,
  type RecentCall,
  RECENT_LIMIT,
  registrationText,
  type State,
} from "./state";

function useNow(intervalMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function App() {
  const [state, setState] = useState<State>(initialState());
  const [error, setError] = useState<string | null>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);

  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    (async () => {
      // Listen first, so nothing between the snapshot and the subscription is lost.
      const unlisten = await events.deskChanged.listen((e) => setState((s) => apply(s, e.payload)));
      if (cancelled) return unlisten();
      stop = unlisten;
      const snapshot = await commands.snapshot();
      const recent = await commands.recent(RECENT_LIMIT);
      setState((s) => {
        const fresh = fromSnapshot(snapshot, recent.status === "ok" ? recent.data : []);
        // Calls that arrived by event while the snapshot was on its way stay.
        const calls = [...fresh.calls, ...s.calls.filter((c) => !fresh.calls.some((f) => f.id === c.id))];
        return { ...fresh, calls, notices: s.notices };
      });
    })();
    return () => {
      cancelled = true;
      stop?.();
    };
  }, []);

  const run = async (action: Promise<{ status: "ok" } | { status: "error"; error: { message: string } }>) => {
    const result = await action;
    setError(result.status === "error" ? result.error.message : null);
  };

  // Keyboard: answer, decline, hang up, hold, mute, DTMF digits, the dial field (keys.ts).
  const calls = useRef(state.calls);
  calls.current = state.calls;
  useEffect(() => {
    if (settingsOpen) return;
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      const inField = !!target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
      const action = keyAction({ key: e.key, ctrl: e.ctrlKey || e.metaKey, alt: e.altKey, shift: e.shiftKey, inField }, calls.current);
      if (!action) return;
      e.preventDefault();
      switch (action.kind) {
        case "answer":
          return void run(commands.answer(action.call));
        case "decline":
          return void run(commands.decline(action.call));
        case "hang-up":
          return void run(commands.hangUp(action.call));
        case "hold":
          return void run(commands.hold(action.call, action.on));
        case "mute":
          return void run(commands.mute(action.call, action.on));
        case "dtmf":
          return void run(commands.sendDtmf(action.call, action.key));
        case "focus-dial":
          return document.querySelector<HTMLInputElement>("[data-test=dial-input]")?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [settingsOpen]);

  if (settingsOpen) {
    return <Settings onClose={() => setSettingsOpen(false)} />;
  }

  return (
    <div class="window">
      <section class="callbox" aria-label="Callbox">
        <StatusBar state={state} onSettings={() => setSettingsOpen(true)} />
        {state.firstRun && <FirstRun onSettings={() => setSettingsOpen(true)} />}
        {state.signIn.map((s) => (
          <p class="sign-in" key={s.integration} data-test="sign-in-needed" role="alert">
            {s.integration} needs you to sign in again ({s.reason}); its CRM writes wait meanwhile.{" "}
            <button onClick={() => run(commands.signIn(s.integration))}>Sign in</button>
          </p>
        ))}
        <Dialer
          blocked={state.callBlocked}
          onDial={(target) => run(commands.dial(target))}
          smsSenders={state.smsSenders}
          onSms={(number, text) => run(commands.sendSms(number, text, null))}
        />
        {error && (
          <p class="error" role="alert" data-test="error">
            {error}
          </p>
        )}
        <div class="calls" data-test="calls">
          {state.calls.map((call) => (
            <CallCard key={call.id} call={call} run={run} />
          ))}
        </div>
        <Recent calls={finishedCalls(state)} run={run} />
        <Messages messages={state.messages} run={run} />
        <Notices state={state} />
      </section>
      <Panel state={state} />
    </div>
  );
}

function StatusBar({ state, onSettings }: { state: State; onSettings: () => void }) {
  const setPresence = (presence: Presence) => void commands.setPresence(presence);
  return (
    <header class="status">
      <span class={`registration ${state.registration.state}`} data-test="registration" data-state={state.registration.state}>
        {registrationText(state.registration)}
      </span>
      <select
        aria-label="Availability"
        data-test="presence"
        value={state.presence}
        onChange={(e) => setPresence((e.currentTarget as HTMLSelectElement).value as Presence)}
      >
        <option value="available">Available</option>
        <option value="away">Away</option>
        <option value="do_not_disturb">Do not disturb</option>
      </select>
      <button class="ghost" data-test="open-settings" title="Settings" aria-label="Settings" onClick={onSettings}>
        ⚙
      </button>
      {state.missed > 0 && (
        <button class="missed" data-test="missed" onClick={() => void commands.clearMissed()} title="Mark as seen">
          {state.missed} missed
        </button>
      )}
    </header>
  );
}

function FirstRun({ onSettings }: { onSettings: () => void }) {
  return (
    <div class="first-run" data-test="first-run">
      <h2>Welcome to Callbox</h2>
      <p>Nothing is set up yet. Two things make Callbox work:</p>
      <ol>
        <li>
          <strong>Your phone account</strong>: write <code>~/.config/callbox/telephony.toml</code> with your PBX's
          address and your extension, and store the password with <code>callbox-cli secret set telephony password</code>.
        </li>
        <li>
          <strong>Your CRM</strong>: add an integration in <code>~/.config/callbox/integrations/</code> from one of the
          built-in templates (HubSpot, Salesforce, Zoho CRM) and test it with <code>callbox-cli integration test</code>.
        </li>
      </ol>
      <p>
        <button class="call" data-test="first-run-settings" onClick={onSettings}>
          Set up in Settings
        </button>
      </p>
      <p class="muted">Or write the files by hand; docs/desktop.md and docs/telephony.md explain each step.</p>
    </div>
  );
}

interface DialerProps {
  blocked: string | null;
  onDial: (target: string) => void;
  smsSenders: string[];
  onSms: (number: string, text: string) => void;
}

function Dialer({ blocked, onDial, smsSenders, onSms }: DialerProps) {
  const [text, setText] = useState("");
  const [sms, setSms] = useState<string | null>(null);
  const [hits, setHits] = useState<SearchHit[]>([]);
  const [pad, setPad] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  // What the agent typed, formatted as they go. The first keystroke loads the formatter; the
  // text is formatted again when it is there.
  const typed = (value: string) => {
    setText(formatNumber(value, navigator.language));
    if (!formatterLoaded()) void loadFormatter().then(() => setText((t) => formatNumber(t, navigator.language)));
  };

  useEffect(() => {
    const query = text.trim();
    if (query.length < 2) {
      setHits([]);
      return;
    }
    let live = true;
    const timer = setTimeout(async () => {
      const found = await commands.searchContacts(query);
      if (live) setHits(found.status === "ok" ? found.data : []);
    }, 120);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text]);

  const dial = (target: string) => {
    const value = dialString(target);
    if (!value || blocked) return;
    onDial(value);
    setText("");
    setHits([]);
  };

  return (
    <div class="dialer">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          dial(text);
        }}
      >
        <input
          ref={input}
          data-test="dial-input"
          aria-label="Number or name"
          aria-keyshortcuts={SHORTCUTS.dial}
          title={`Number or name (${shortcutText(SHORTCUTS.dial)})`}
          placeholder="Number or name"
          value={text}
          onInput={(e) => typed((e.currentTarget as HTMLInputElement).value)}
          autoFocus
        />
        <button type="submit" class="call" data-test="dial" disabled={!!blocked || !text.trim()} title={blocked ?? "Call"}>
          Call
        </button>
        <button type="button" class="ghost" onClick={() => setPad(!pad)} aria-pressed={pad} title="Dial pad">
          ⌨
        </button>
        {smsSenders.length > 0 && (
          <button
            type="button"
            class="ghost"
            data-test="sms"
            aria-pressed={sms !== null}
            title={`Send an SMS (through ${smsSenders[0]})`}
            onClick={() => setSms(sms === null ? "" : null)}
          >
            SMS
          </button>
        )}
      </form>
      {sms !== null && (
        <form
          class="sms"
          onSubmit={(e) => {
            e.preventDefault();
            if (!text.trim() || !sms.trim()) return;
            onSms(dialString(text), sms);
            setSms(null);
          }}
        >
          <textarea
            data-test="sms-text"
            aria-label="Message"
            placeholder={text.trim() ? `Message to ${text}` : "Type the number above, then the message"}
            maxLength={1600}
            value={sms}
            onInput={(e) => setSms((e.currentTarget as HTMLTextAreaElement).value)}
          />
          <button type="submit" data-test="sms-send" disabled={!text.trim() || !sms.trim()}>
            Send SMS
          </button>
        </form>
      )}
      {blocked && (
        <p class="blocked" data-test="call-blocked">
          {blocked}
        </p>
      )}
      {pad && (
        <Keypad
          onKey={(key) => {
            typed(text + key);
            input.current?.focus();
          }}
        />
      )}
      {hits.length > 0 && (
        <ul class="hits" data-test="search-hits">
          {hits.map((hit) => (
            <li key={`${hit.integration}:${hit.number}`}>
              <button onClick={() => dial(hit.number)}>
                <strong>{hit.name || hit.number}</strong> {hit.company && <span>{hit.company}</span>}
                <small>
                  {hit.number} · {hit.reason}
                </small>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

function Keypad({ onKey }: { onKey: (key: string) => void }) {
  return (
    <div class="keypad" role="group" aria-label="Keypad">
      {KEYS.map((key) => (
        <button key={key} data-test={`key-${key}`} onClick={() => onKey(key)}>
          {key}
        </button>
      ))}
    </div>
  );
}

type Run = (action: Promise<{ status: "ok" } | { status: "error"; error: { message: string } }>) => void;

function CallCard({ call, run }: { call: CallView; run: Run }) {
  const now = useNow(1000);
  const [pad, setPad] = useState(false);
  const [transferTo, setTransferTo] = useState<string | null>(null);
  const ringing = call.phase === "ringing";
  const up = call.phase === "up";
  const since = call.answered_at_ms ?? call.started_at_ms ?? now;
  const phaseText = useMemo(() => {
    switch (call.phase) {
      case "ringing":
        return call.waiting ? "Call waiting" : "Incoming call";
      case "dialing":
        return "Calling…";
      case "ringing_out":
        return "Ringing…";
      case "up":
        return call.held ? "On hold" : call.held_by_remote ? "Held by the other side" : "Connected";
      case "ended":
        return "Ended";
    }
  }, [call.phase, call.waiting, call.held, call.held_by_remote]);

  return (
    <article class={`call-card ${call.phase}`} data-test="call-card" data-call={call.id} data-phase={call.phase}>
      <div class="who">
        <strong data-test="caller-name">{callerName(call)}</strong>
        {call.contact?.company && <span class="company">{call.contact.company}</span>}
        <span class="number" data-test="caller-number">
          {call.number}
        </span>
        {call.contact && (
          <small class="reason" title={`confidence ${Math.round((call.contact.confidence ?? 0) * 100)}%`}>
            {call.contact.integration}: {call.contact.reason}
          </small>
        )}
        {call.looking_up && <small class="muted">Looking up…</small>}
        {call.lookup_errors.map((e) => (
          <small class="error" key={e}>
            {e}
          </small>
        ))}
      </div>
      <div class="phase">
        <span data-test="call-phase">{phaseText}</span>
        {up && (
          <span class="timer" data-test="timer">
            {elapsed(since, now)}
          </span>
        )}
      </div>
      {call.needs_choice && call.matches.length > 1 && (
        <div class="choose" data-test="choose-contact">
          <p>Several contacts have this number. Which one is calling?</p>
          {call.matches.map((m) => (
            <button key={m.index} onClick={() => run(commands.chooseContact(call.id, m.index))}>
              {m.name || "(no name)"} {m.company && `· ${m.company}`}
            </button>
          ))}
        </div>
      )}
      {!call.looking_up && !call.contact && (
        <div class="unknown" data-test="unknown-caller">
          <span>Unknown caller.</span>
          <button onClick={() => run(commands.createContact(call.id, integrationOf(call)))}>Create contact</button>
          <button onClick={() => run(commands.createTicket(call.id, integrationOf(call)))}>Create ticket</button>
        </div>
      )}
      <div class="actions">
        {ringing && (
          <>
            <button class="answer" data-test="answer" title={shortcutText(SHORTCUTS.answer)} aria-keyshortcuts={SHORTCUTS.answer} onClick={() => run(commands.answer(call.id))}>
              Answer
            </button>
            <button class="decline" data-test="decline" title={shortcutText(SHORTCUTS.decline)} aria-keyshortcuts={SHORTCUTS.decline} onClick={() => run(commands.decline(call.id))}>
              Decline
            </button>
          </>
        )}
        {up && (
          <>
            <button data-test="hold" aria-pressed={call.held} title={shortcutText(SHORTCUTS.hold)} aria-keyshortcuts={SHORTCUTS.hold} onClick={() => run(commands.hold(call.id, !call.held))}>
              {call.held ? "Resume" : "Hold"}
            </button>
            <button data-test="mute" aria-pressed={call.muted} title={shortcutText(SHORTCUTS.mute)} aria-keyshortcuts={SHORTCUTS.mute} onClick={() => run(commands.mute(call.id, !call.muted))}>
              {call.muted ? "Unmute" : "Mute"}
            </button>
            <button data-test="keypad" aria-pressed={pad} onClick={() => setPad(!pad)}>
              Keypad
            </button>
            <button data-test="transfer" onClick={() => setTransferTo(transferTo === null ? "" : null)}>
              Transfer
            </button>
          </>
        )}
        {!ringing && (
          <button class="hang-up" data-test="hang-up" title={shortcutText(SHORTCUTS.hangUp)} aria-keyshortcuts={SHORTCUTS.hangUp} onClick={() => run(commands.hangUp(call.id))}>
            Hang up
          </button>
        )}
      </div>
      {pad && up && <Keypad onKey={(key) => run(commands.sendDtmf(call.id, key))} />}
      {transferTo !== null && up && (
        <form
          class="transfer"
          onSubmit={(e) => {
            e.preventDefault();
            if (transferTo.trim()) run(commands.transfer(call.id, dialString(transferTo)));
            setTransferTo(null);
          }}
        >
          <input
            data-test="transfer-target"
            placeholder="Transfer to…"
            value={transferTo}
            onInput={(e) => setTransferTo((e.currentTarget as HTMLInputElement).value)}
            autoFocus
          />
          <button type="submit">Transfer</button>
        </form>
      )}
    </article>
  );
}

function integrationOf(call: CallView): string {
  return call.contact?.integration ?? call.matches[0]?.integration ?? "";
}

function Recent({ calls, run }: { calls: RecentCall[]; run: Run }) {
  if (calls.length === 0) return null;
  return (
    <section class="recent" aria-label="Recent calls">
      <h3>Recent calls</h3>
      <ul data-test="recent">
        {calls.map(({ call, hooks }) => (
          <li key={call.id} data-test="recent-call" data-call={call.id}>
            <div class="line">
              <span class={`direction ${call.inbound ? "in" : "out"}`}>{call.inbound ? "↙" : "↗"}</span>
              <strong>{callerName(call)}</strong>
              <span class="muted">{call.disposition ?? ""}</span>
              <button class="ghost" title="Call back" onClick={() => run(commands.dial(call.number))}>
                Call
              </button>
            </div>
            <HookList hooks={hooks} run={run} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The CRM writes of a call or SMS, each with its state; a failed one can be sent again. */
function HookList({ hooks, run }: { hooks: HookView[]; run: Run }) {
  return (
    <ul class="hooks">
      {hooks.map((hook) => (
        <li key={hook.id ?? hook.hook} class={`hook ${hook.state}`} data-test="hook" data-hook={hook.hook} data-state={hook.state}>
          {hookText(hook)}
          {hook.state === "failed" && (
            <button class="ghost" data-test="retry" onClick={() => run(commands.retryHook(hook.id))}>
              Retry
            </button>
          )}
        </li>
      ))}
    </ul>
  );
}

function Messages({ messages, run }: { messages: Message[]; run: Run }) {
  if (messages.length === 0) return null;
  return (
    <section class="recent" aria-label="Messages">
      <h3>Messages</h3>
      <ul data-test="messages">
        {messages.map(({ sms, hooks }) => (
          <li key={sms.id} data-test="message">
            <div class="line">
              <span class="direction out">✉</span>
              <strong>{sms.number}</strong>
              <span class="muted">{sms.text.length > 40 ? `${sms.text.slice(0, 40)}…` : sms.text}</span>
            </div>
            <HookList hooks={hooks} run={run} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function Notices({ state }: { state: State }) {
  if (state.notices.length === 0) return null;
  return (
    <ul class="notices" data-test="notices">
      {state.notices.map((n) => (
        <li key={n.id}>{n.text}</li>
      ))}
    </ul>
  );
}

function Panel({ state }: { state: State }) {
  const panel = state.panel;
  if (!panel) {
    return (
      <section class="panel empty" data-test="panel">
        <p>The caller's CRM record opens here.</p>
      </section>
    );
  }
  return (
    <section class="panel" data-test="panel" data-target={panel.target}>
      <header>
        <span class="url" title={panel.url}>
          {panel.url}
        </span>
        <button class="ghost" onClick={() => void commands.openOutside(panel.url, false)}>
          Open in window
        </button>
        <button class="ghost" onClick={() => void commands.openOutside(panel.url, true)}>
          Open in browser
        </button>
      </header>
      {panel.target === "embedded" ? (
        <iframe
          data-test="panel-frame"
          src={panel.url}
          title="CRM record"
          sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox"
          referrerpolicy="no-referrer"
        />
      ) : (
        <p class="outside" data-test="panel-outside">
          This CRM does not allow being shown inside Callbox ({panel.reason ?? "framing refused"}), so the record opened in
          {panel.target === "window" ? " a window of its own" : " your browser"}.
        </p>
      )}
    </section>
  );
}
