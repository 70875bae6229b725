// Numbers as the agent types them: formatted as they go (libphonenumber-js's AsYouType, with
// the country of the system's locale for national numbers), dialled as typed digits.

import { AsYouType, type CountryCode, getCountries } from "libphonenumber-js";

const known = new Set<string>(getCountries());

/** The country of a locale like "en-US" or "de_DE.UTF-8", when it is one libphonenumber knows. */
export function countryOf(locale: string | undefined): CountryCode | undefined {
  const match = /[-_]([A-Za-z]{2})\b/.exec(locale ?? "");
  const code = match?.[1]?.toUpperCase();
  return code && known.has(code) ? (code as CountryCode) : undefined;
}

/** Looks like something to dial (digits, +, *, #, spaces and separators), not a name. */
export function isDialable(text: string): boolean {
  return /^[+\d][\d\s().\-/*#]*$/.test(text.trim());
}

/** `text` formatted as the agent types it; names and SIP addresses are left alone. */
export function formatAsYouType(text: string, country?: CountryCode): string {
  if (!isDialable(text) || /[*#]/.test(text)) return text;
  const formatter = new AsYouType(country);
  return formatter.input(text);
}

/** The digits (and a leading +) to send to the phone. */
export function dialString(text: string): string {
  const trimmed = text.trim();
  if (!isDialable(trimmed)) return trimmed;
  return trimmed.replace(/[^\d+*#]/g, "").replace(/(?!^)\+/g, "");
}
