import { describe, expect, it } from "vitest";
import { apply, callerName, elapsed, finishedCalls, hookText, initialState, registrationText, type CallView } from "./state";

function call(id: string, over: Partial<CallView> = {}): CallView {
  return {
    id,
    inbound: true,
    number: "+4930901820",
    network_name: null,
    phase: "ringing",
    waiting: false,
    held: false,
    held_by_remote: false,
    muted: false,
    contact: null,
    matches: [],
    needs_choice: false,
    looking_up: true,
    lookup_errors: [],
    started_at_ms: 1_000,
    answered_at_ms: null,
    ended_at_ms: null,
    disposition: null,
    end_reason: null,
    ...over,
  };
}

describe("desk events", () => {
  it("add, update and end calls; the ended call moves to recent with its hooks", () => {
    let s = initialState();
    s = apply(s, { kind: "call", call: call("a") });
    s = apply(s, { kind: "call", call: call("a", { phase: "up", answered_at_ms: 2_000 }) });
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]?.phase).toBe("up");
    s = apply(s, { kind: "hooks", call_id: "a", hooks: [{ id: 1, integration: "desk", hook: "PreCallJournal", state: "sent", attempts: 1, error: null }] });
    expect(finishedCalls(s)).toHaveLength(0);
    s = apply(s, { kind: "call_ended", call: call("a", { phase: "ended", disposition: "completed" }) });
    expect(s.calls).toHaveLength(0);
    expect(s.recent[0]?.call.disposition).toBe("completed");
    expect(s.recent[0]?.hooks[0]?.hook).toBe("PreCallJournal");
    s = apply(s, { kind: "hooks", call_id: "a", hooks: [{ id: 2, integration: "desk", hook: "CallJournal", state: "failed", attempts: 3, error: "503 Service Unavailable" }] });
    expect(s.recent[0]?.hooks[0]?.state).toBe("failed");
  });

  it("keeps the panel, presence, registration and the last five notices", () => {
    let s = initialState();
    s = apply(s, { kind: "panel", panel: { call_id: "a", url: "https://crm/1", target: "embedded", reason: null } });
    s = apply(s, { kind: "presence", presence: "do_not_disturb", missed: 2 });
    s = apply(s, { kind: "registration", registration: { state: "registered", user: "1002" } });
    for (let i = 0; i < 7; i++) s = apply(s, { kind: "notice", text: `n${i}` });
    expect(s.panel?.url).toBe("https://crm/1");
    expect(s.missed).toBe(2);
    expect(registrationText(s.registration)).toBe("Ready · 1002");
    expect(s.notices.map((n) => n.text)).toEqual(["n2", "n3", "n4", "n5", "n6"]);
  });
});

describe("words", () => {
  it("names the caller by contact, network name, then number", () => {
    expect(callerName(call("a"))).toBe("+4930901820");
    expect(callerName(call("a", { network_name: "Reception" }))).toBe("Reception");
    expect(
      callerName(call("a", { contact: { integration: "desk", index: 0, name: "Jonas Weber", company: "", url: null, reason: "", confidence: 1 } })),
    ).toBe("Jonas Weber");
  });

  it("formats timers and hook states", () => {
    expect(elapsed(0, 65_000)).toBe("1:05");
    expect(elapsed(0, 3_725_000)).toBe("1:02:05");
    expect(elapsed(5_000, 0)).toBe("0:00");
    expect(hookText({ id: 1, integration: "hubspot", hook: "CallJournal", state: "failed", attempts: 2, error: "401 Unauthorized" })).toBe(
      "Call log · hubspot · failed: 401 Unauthorized",
    );
  });
});

describe("SMS", () => {
  it("lists sent messages and follows their writes", () => {
    let s = initialState();
    s = apply(s, { kind: "sms", sms: { id: "sms-1", number: "+49305550007", text: "Hi", integration: "desk", at_ms: 1 } });
    s = apply(s, {
      kind: "hooks",
      call_id: "sms-1",
      hooks: [{ id: 3, integration: "desk", hook: "SendSms", state: "sent", attempts: 1, error: null }],
    });
    expect(s.messages[0]?.hooks[0]?.state).toBe("sent");
    expect(hookText(s.messages[0]!.hooks[0]!)).toBe("SMS · desk · sent");
    expect(s.recent).toHaveLength(0);
  });
});

describe("sign-in prompts", () => {
  it("shows the integrations waiting for a sign-in, and clears them", () => {
    let s = initialState();
    s = apply(s, { kind: "sign_in", needed: [{ integration: "hubspot", reason: "refresh token revoked" }] });
    expect(s.signIn.map((n) => n.integration)).toEqual(["hubspot"]);
    s = apply(s, { kind: "sign_in", needed: [] });
    expect(s.signIn).toHaveLength(0);
  });
});
