import { describe, expect, it } from "vitest";
import { keyAction, type KeyPress } from "./keys";
import type { CallView } from "./state";

function call(id: string, phase: CallView["phase"], extra: Partial<CallView> = {}): CallView {
  return {
    id,
    phase,
    inbound: true,
    number: "+14155550100",
    waiting: false,
    held: false,
    held_by_remote: false,
    muted: false,
    ...extra,
  } as CallView;
}

const ctrl = (key: string): KeyPress => ({ key, ctrl: true, alt: false, shift: false, inField: false });
const plain = (key: string, inField = false): KeyPress => ({ key, ctrl: false, alt: false, shift: false, inField });

describe("keyboard shortcuts", () => {
  it("answer and decline the ringing call, the waiting one first", () => {
    const calls = [call("a", "up"), call("b", "ringing", { waiting: true })];
    expect(keyAction(ctrl("Enter"), calls)).toEqual({ kind: "answer", call: "b" });
    expect(keyAction(ctrl("d"), calls)).toEqual({ kind: "decline", call: "b" });
    expect(keyAction(ctrl("D"), calls)).toEqual({ kind: "decline", call: "b" });
  });

  it("do nothing without a call to act on", () => {
    expect(keyAction(ctrl("Enter"), [])).toBeNull();
    expect(keyAction(ctrl("e"), [])).toBeNull();
    expect(keyAction(ctrl("h"), [call("r", "ringing")])).toBeNull();
    expect(keyAction(plain("5"), [call("r", "ringing")])).toBeNull();
  });

  it("hang up, hold and mute the call being talked on, not the held one", () => {
    const calls = [call("held", "up", { held: true }), call("talk", "up", { muted: true })];
    expect(keyAction(ctrl("e"), calls)).toEqual({ kind: "hang-up", call: "talk" });
    expect(keyAction(ctrl("h"), calls)).toEqual({ kind: "hold", call: "talk", on: true });
    expect(keyAction(ctrl("m"), calls)).toEqual({ kind: "mute", call: "talk", on: false });
    expect(keyAction(ctrl("h"), [call("held", "up", { held: true })])).toEqual({ kind: "hold", call: "held", on: false });
  });

  it("hang up cancels an outgoing call still ringing out", () => {
    expect(keyAction(ctrl("e"), [call("out", "ringing_out", { inbound: false })])).toEqual({ kind: "hang-up", call: "out" });
  });

  it("send digits as DTMF during a call, except while typing in a field", () => {
    const calls = [call("a", "up")];
    expect(keyAction(plain("7"), calls)).toEqual({ kind: "dtmf", call: "a", key: "7" });
    expect(keyAction(plain("#"), calls)).toEqual({ kind: "dtmf", call: "a", key: "#" });
    expect(keyAction(plain("7", true), calls)).toBeNull();
    expect(keyAction(plain("x"), calls)).toBeNull();
    expect(keyAction(plain("7"), [call("a", "up", { held: true })])).toBeNull();
  });

  it("leave other modifier combinations alone", () => {
    const calls = [call("r", "ringing")];
    expect(keyAction({ ...ctrl("Enter"), shift: true }, calls)).toBeNull();
    expect(keyAction({ ...ctrl("Enter"), alt: true }, calls)).toBeNull();
    expect(keyAction(ctrl("l"), [])).toEqual({ kind: "focus-dial" });
  });
});
