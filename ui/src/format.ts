// Numbers as the agent types them: formatted as they go (as-you-type.ts, loaded on the first
// keystroke), dialled as typed digits.

type AsYouTypeModule = typeof import("./as-you-type");

let formatter: AsYouTypeModule | undefined;
let loading: Promise<AsYouTypeModule> | undefined;

/** Looks like something to dial (digits, +, *, #, spaces and separators), not a name. */
export function isDialable(text: string): boolean {
  return /^[+\d][\d\s().\-/*#]*$/.test(text.trim());
}

/** The digits (and a leading +) to send to the phone. */
export function dialString(text: string): string {
  const trimmed = text.trim();
  if (!isDialable(trimmed)) return trimmed;
  return trimmed.replace(/[^\d+*#]/g, "").replace(/(?!^)\+/g, "");
}

/**
 * Loads the as-you-type formatter (libphonenumber-js, about three quarters of the UI's script
 * and some 3 MB of the web process) once; later calls get the same module.
 */
export function loadFormatter(): Promise<AsYouTypeModule> {
  loading ??= import("./as-you-type").then((module) => (formatter = module));
  return loading;
}

/** Whether `formatNumber` formats yet. */
export function formatterLoaded(): boolean {
  return formatter !== undefined;
}

/**
 * `text` formatted for the country of `locale` once the formatter is loaded; until then, as
 * typed (the caller formats again when `loadFormatter` resolves).
 */
export function formatNumber(text: string, locale: string | undefined): string {
  return formatter ? formatter.formatAsYouType(text, formatter.countryOf(locale)) : text;
}
