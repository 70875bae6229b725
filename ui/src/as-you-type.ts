// As-you-type formatting with libphonenumber-js, with the country of the system's locale for
// national numbers. It is most of the UI's script, so the window loads it on the first
// keystroke in the dial field (see `loadFormatter` in format.ts), not at start.

import { AsYouType, type CountryCode, getCountries } from "libphonenumber-js";
import { isDialable } from "./format";

const known = new Set<string>(getCountries());

/** The country of a locale like "en-US" or "de_DE.UTF-8", when it is one libphonenumber knows. */
export function countryOf(locale: string | undefined): CountryCode | undefined {
  const match = /[-_]([A-Za-z]{2})\b/.exec(locale ?? "");
  const code = match?.[1]?.toUpperCase();
  return code && known.has(code) ? (code as CountryCode) : undefined;
}

/** `text` formatted as the agent types it; names and SIP addresses are left alone. */
export function formatAsYouType(text: string, country?: CountryCode): string {
  if (!isDialable(text) || /[*#]/.test(text)) return text;
  const formatter = new AsYouType(country);
  return formatter.input(text);
}
