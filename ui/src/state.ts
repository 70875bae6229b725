// The window's state and how each desk event changes it. Pure: no IPC, no DOM, so it is
// unit-tested (state.test.ts) and the components only render it.

import type {
  CallView_Serialize as CallView,
  DeskEvent_Serialize as DeskEvent,
  DeskSnapshot_Serialize as DeskSnapshot,
  HookView_Serialize as HookView,
  PanelRequest_Serialize as PanelRequest,
  Presence,
  RecentCall_Serialize as RecentCall,
  RegistrationView,
  SignInNeeded,
  SmsView,
} from "./bindings";

export type { CallView, DeskEvent, DeskSnapshot, HookView, PanelRequest, Presence, RecentCall, RegistrationView, SmsView };

export interface Message {
  sms: SmsView;
  hooks: HookView[];
}

export interface Notice {
  id: number;
  text: string;
}

export interface State {
  registration: RegistrationView;
  presence: Presence;
  missed: number;
  calls: CallView[];
  recent: RecentCall[];
  panel: PanelRequest | null;
  callBlocked: string | null;
  firstRun: boolean;
  notices: Notice[];
  smsSenders: string[];
  messages: Message[];
  signIn: SignInNeeded[];
}

export const RECENT_LIMIT = 30;

export function initialState(): State {
  return {
    registration: { state: "unregistered" },
    presence: "available",
    missed: 0,
    calls: [],
    recent: [],
    panel: null,
    callBlocked: null,
    firstRun: false,
    notices: [],
    smsSenders: [],
    messages: [],
    signIn: [],
  };
}

export function fromSnapshot(snapshot: DeskSnapshot, recent: RecentCall[]): State {
  return {
    ...initialState(),
    registration: snapshot.registration,
    presence: snapshot.presence,
    missed: snapshot.missed,
    calls: snapshot.calls,
    panel: snapshot.panel,
    callBlocked: snapshot.call_blocked,
    firstRun: snapshot.first_run,
    smsSenders: snapshot.sms_senders,
    signIn: snapshot.sign_in_needed,
    recent,
  };
}

let noticeCounter = 0;

/** The state after `event`. */
export function apply(state: State, event: DeskEvent): State {
  switch (event.kind) {
    case "registration":
      return { ...state, registration: event.registration };
    case "call": {
      const known = state.calls.some((c) => c.id === event.call.id);
      const calls = known
        ? state.calls.map((c) => (c.id === event.call.id ? event.call : c))
        : [...state.calls, event.call];
      return { ...state, calls };
    }
    case "call_ended": {
      const calls = state.calls.filter((c) => c.id !== event.call.id);
      const earlier = state.recent.find((r) => r.call.id === event.call.id);
      const entry: RecentCall = { call: event.call, hooks: earlier?.hooks ?? [] };
      const recent = [entry, ...state.recent.filter((r) => r.call.id !== event.call.id)].slice(0, RECENT_LIMIT);
      return { ...state, calls, recent };
    }
    case "panel":
      return { ...state, panel: event.panel };
    case "sms":
      return { ...state, messages: [{ sms: event.sms, hooks: [] }, ...state.messages].slice(0, RECENT_LIMIT) };
    case "hooks": {
      if (state.messages.some((m) => m.sms.id === event.call_id)) {
        return {
          ...state,
          messages: state.messages.map((m) => (m.sms.id === event.call_id ? { ...m, hooks: event.hooks } : m)),
        };
      }
      const has = state.recent.some((r) => r.call.id === event.call_id);
      if (!has) {
        // A call still in progress (pre-log): keep its hooks until it ends.
        const live = state.calls.find((c) => c.id === event.call_id);
        if (!live) return state;
        return { ...state, recent: [{ call: live, hooks: event.hooks }, ...state.recent].slice(0, RECENT_LIMIT) };
      }
      return {
        ...state,
        recent: state.recent.map((r) => (r.call.id === event.call_id ? { ...r, hooks: event.hooks } : r)),
      };
    }
    case "sign_in":
      return { ...state, signIn: event.needed };
    case "presence":
      return { ...state, presence: event.presence, missed: event.missed };
    case "notice":
      noticeCounter += 1;
      return { ...state, notices: [...state.notices, { id: noticeCounter, text: event.text }].slice(-5) };
  }
}

/** Recent calls, without the ones still in progress (those show as call cards). */
export function finishedCalls(state: State): RecentCall[] {
  const live = new Set(state.calls.map((c) => c.id));
  return state.recent.filter((r) => !live.has(r.call.id));
}

/** "Jonas Weber", else the network's name, else the number. */
export function callerName(call: CallView): string {
  const name = call.contact?.name;
  if (name) return name;
  if (call.network_name) return call.network_name;
  return call.number;
}

/** m:ss (or h:mm:ss) since `fromMs`. */
export function elapsed(fromMs: number, nowMs: number): string {
  const total = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function registrationText(r: RegistrationView): string {
  switch (r.state) {
    case "registered":
      return `Ready · ${r.user}`;
    case "registering":
      return "Connecting…";
    case "unregistered":
      return "Offline";
    case "failed":
      return `Not connected: ${r.reason}`;
    case "not_configured":
      return "No phone account";
  }
}

/** What a call's CRM write shows: "Call log sent", "Pre-log failed: 503 …". */
export function hookText(hook: HookView): string {
  const names: Record<string, string> = {
    PreCallJournal: "Pre-log",
    CallJournal: "Call log",
    SmsNote: "SMS note",
    SendSms: "SMS",
    CreateNewContact: "New contact",
    CreateNewTicket: "New ticket",
  };
  const what = names[hook.hook] ?? hook.hook;
  const state = hook.state === "failed" && hook.error ? `failed: ${hook.error}` : hook.state;
  return `${what} · ${hook.integration} · ${state}`;
}
