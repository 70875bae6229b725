import { describe, expect, it } from "vitest";
import { countryOf, formatAsYouType } from "./as-you-type";
import { dialString, formatNumber, formatterLoaded, isDialable, loadFormatter } from "./format";

describe("as-you-type formatting", () => {
  it("formats international and national numbers as they are typed", () => {
    expect(formatAsYouType("+1415555", undefined)).toBe("+1 415 555");
    expect(formatAsYouType("+14155550100", undefined)).toBe("+1 415 555 0100");
    expect(formatAsYouType("+4930901820", undefined)).toBe("+49 30 901820");
    expect(formatAsYouType("4155550100", "US")).toBe("(415) 555-0100");
    expect(formatAsYouType("030901820", "DE")).toBe("030 901820");
  });

  it("leaves names, SIP addresses and star codes alone", () => {
    expect(formatAsYouType("Jonas", "DE")).toBe("Jonas");
    expect(formatAsYouType("sip:1001@pbx", "DE")).toBe("sip:1001@pbx");
    expect(formatAsYouType("*72", "US")).toBe("*72");
  });

  it("dials the digits", () => {
    expect(dialString("+1 (415) 555-0100")).toBe("+14155550100");
    expect(dialString("030 901820")).toBe("030901820");
    expect(dialString("sip:1001@pbx")).toBe("sip:1001@pbx");
    expect(isDialable("Jonas Weber")).toBe(false);
  });

  it("reads the country of a locale", () => {
    expect(countryOf("en-US")).toBe("US");
    expect(countryOf("de_DE.UTF-8")).toBe("DE");
    expect(countryOf("en")).toBeUndefined();
    expect(countryOf(undefined)).toBeUndefined();
  });
});

describe("the formatter, loaded on first use", () => {
  it("leaves text as typed until it is loaded, then formats for the locale's country", async () => {
    expect(formatterLoaded()).toBe(false);
    expect(formatNumber("4155550100", "en-US")).toBe("4155550100");
    const first = loadFormatter();
    expect(loadFormatter()).toBe(first);
    await first;
    expect(formatterLoaded()).toBe(true);
    expect(formatNumber("4155550100", "en-US")).toBe("(415) 555-0100");
    expect(formatNumber("+4930901820", "de-DE")).toBe("+49 30 901820");
    expect(formatNumber("Jonas", "de-DE")).toBe("Jonas");
  });
});
