// The window's keyboard shortcuts: which key does what to which call. Pure, so it is
// unit-tested (keys.test.ts); app.tsx listens for keys and runs the commands.

import type { CallView } from "./state";

/** The shortcuts, as shown in buttons' titles and `aria-keyshortcuts`. */
export const SHORTCUTS = {
  answer: "Control+Enter",
  decline: "Control+D",
  hangUp: "Control+E",
  hold: "Control+H",
  mute: "Control+M",
  dial: "Control+L",
} as const;

/** A shortcut as people read it ("Ctrl+Enter"). */
export function shortcutText(shortcut: string): string {
  return shortcut.replace("Control", "Ctrl");
}

/** What a key press asks for. */
export type KeyAction =
  | { kind: "answer" | "decline" | "hang-up"; call: string }
  | { kind: "hold"; call: string; on: boolean }
  | { kind: "mute"; call: string; on: boolean }
  | { kind: "dtmf"; call: string; key: string }
  | { kind: "focus-dial" };

/** The parts of a key event that matter. */
export interface KeyPress {
  key: string;
  ctrl: boolean;
  alt: boolean;
  shift: boolean;
  /** Focus is in a text field (plain keys then type, they do not act). */
  inField: boolean;
}

const DTMF_KEYS = "0123456789*#";

/** The ringing call the agent would answer: the one waiting beside a call in progress first. */
export function ringingCall(calls: CallView[]): CallView | undefined {
  const ringing = calls.filter((c) => c.phase === "ringing");
  return ringing.find((c) => c.waiting) ?? ringing[0];
}

/** The call in progress the agent is talking on (not on hold), else any call in progress. */
export function currentCall(calls: CallView[]): CallView | undefined {
  const live = calls.filter((c) => c.phase !== "ringing" && c.phase !== "ended");
  return live.find((c) => c.phase === "up" && !c.held) ?? live[0];
}

/** The action a key press asks for, or null when it is not a shortcut here. */
export function keyAction(press: KeyPress, calls: CallView[]): KeyAction | null {
  if (press.ctrl && !press.alt && !press.shift) {
    const key = press.key.length === 1 ? press.key.toLowerCase() : press.key;
    const ringing = ringingCall(calls);
    const current = currentCall(calls);
    switch (key) {
      case "Enter":
        return ringing ? { kind: "answer", call: ringing.id } : null;
      case "d":
        return ringing ? { kind: "decline", call: ringing.id } : null;
      case "e":
        return current ? { kind: "hang-up", call: current.id } : null;
      case "h":
        return current?.phase === "up" ? { kind: "hold", call: current.id, on: !current.held } : null;
      case "m":
        return current?.phase === "up" ? { kind: "mute", call: current.id, on: !current.muted } : null;
      case "l":
        return { kind: "focus-dial" };
      default:
        return null;
    }
  }
  if (!press.ctrl && !press.alt && !press.inField && DTMF_KEYS.includes(press.key) && press.key.length === 1) {
    const current = currentCall(calls);
    return current?.phase === "up" && !current.held ? { kind: "dtmf", call: current.id, key: press.key } : null;
  }
  return null;
}
