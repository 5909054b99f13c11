// Electricity prices over time, as the tariff nodes of Node-RED deliver them (Tibber, aWATTar,
// ENTSO-E style lists), turned into one sorted list of slots with a price per kWh and a price
// level. Parsing is all or nothing: a list with one bad entry is refused whole, with a message
// that names the entry and the field.
//
// Price levels follow the vendor's (from Tibber, api-spec §7 and the vendor's price-controlled
// charging page), numbered from cheap to expensive so that a rule's `price_level` ("matches while
// the level is at most this") reads naturally:
//   1 very cheap      (Tibber VERY_CHEAP:      ≤ 60 % of the average)
//   2 cheap           (Tibber CHEAP:           ≤ 90 %)
//   3 normal          (Tibber NORMAL:          90 … 115 %)
//   4 expensive       (Tibber EXPENSIVE:       ≥ 115 %)
//   5 very expensive  (Tibber VERY_EXPENSIVE:  ≥ 140 %)
// A source that names the level (Tibber) is taken as it is; for the others the level is computed
// the same way against the average price of the list (the vendor does so for aWATTar).
//
// Pure: no clock, no I/O.
import { z } from 'zod';
import { describeIssues } from '../site/schema';

export const PRICE_LEVEL = {
    veryCheap: 1,
    cheap: 2,
    normal: 3,
    expensive: 4,
    veryExpensive: 5,
} as const;

const TIBBER_LEVELS: Readonly<Record<string, number>> = {
    VERY_CHEAP: PRICE_LEVEL.veryCheap,
    CHEAP: PRICE_LEVEL.cheap,
    NORMAL: PRICE_LEVEL.normal,
    EXPENSIVE: PRICE_LEVEL.expensive,
    VERY_EXPENSIVE: PRICE_LEVEL.veryExpensive,
};

/** Most slots a list may hold: three days in quarter hours, with room to spare. */
export const MAX_PRICE_SLOTS = 1000;
const HOUR_MS = 3_600_000;

export interface PriceSlot {
    /** Start and end (ms, Unix epoch); end is exclusive. */
    start: number;
    end: number;
    /** Price per kWh in the tariff's currency (€/kWh for aWATTar, Tibber in Germany). */
    price: number;
    /** 1 (very cheap) … 5 (very expensive). */
    level: number;
}

export class PriceListError extends Error {
    readonly code = 'PRICE_LIST';
}

/** How the prices of a source without a `unit` field are to be read. */
export type PriceUnit = 'auto' | 'kWh' | 'MWh' | 'ct/kWh';

/** A time: ISO text with an offset, or a number (ms; below 1e11 taken as Unix seconds). */
const time = z.union([z.string().max(64), z.number().finite()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? (Math.abs(v) < 1e11 ? v * 1000 : v) : Date.parse(v);
    if (!Number.isFinite(ms)) {
        ctx.addIssue({ code: 'custom', message: `not a time: ${JSON.stringify(v)}` });
        return z.NEVER;
    }
    return ms;
});
const price = z.number({ message: 'must be a number' }).finite().min(-1e6).max(1e6);
const unitText = z.string().max(32).optional();

/** Tibber (`priceInfo.today` / `tomorrow` entries): total in currency per kWh, a level name. */
const TibberEntry = z.object({
    startsAt: time,
    total: price,
    level: z
        .union([z.enum(Object.keys(TIBBER_LEVELS) as [string, ...string[]]), z.number()])
        .optional(),
});
/** aWATTar's API (`data` entries): Eur/MWh, times in ms. */
const AwattarEntry = z.object({
    start_timestamp: time,
    end_timestamp: time,
    marketprice: price,
    unit: unitText,
});
/** `{start, end, price}` (aWATTar clients, ENTSO-E nodes): €/MWh unless `unit` says otherwise. */
const StartEndEntry = z.object({
    start: time,
    end: time.optional(),
    price,
    unit: unitText,
});
/** `{start, value}` (node-red-contrib-power-saver's priceData): per kWh. */
const StartValueEntry = z.object({ start: time, value: price, unit: unitText });

type Kind = 'tibber' | 'awattar' | 'startEnd' | 'startValue';
const ENTRY: Record<Kind, z.ZodType> = {
    tibber: TibberEntry,
    awattar: AwattarEntry,
    startEnd: StartEndEntry,
    startValue: StartValueEntry,
};
/** Per-kWh factor of a source's prices when neither the entry nor the caller names a unit. */
const DEFAULT_FACTOR: Record<Kind, number> = {
    tibber: 1,
    awattar: 1 / 1000,
    startEnd: 1 / 1000,
    startValue: 1,
};

function kindOf(entry: unknown): Kind | undefined {
    if (typeof entry !== 'object' || entry === null) return undefined;
    if ('startsAt' in entry) return 'tibber';
    if ('start_timestamp' in entry || 'marketprice' in entry) return 'awattar';
    if ('value' in entry && !('price' in entry)) return 'startValue';
    if ('start' in entry) return 'startEnd';
    return undefined;
}

function factorOfUnit(unit: string): number | undefined {
    const u = unit.toLowerCase().replace(/\s+/g, '');
    if (/^(ct|cent|cents)\/kwh$/.test(u)) return 1 / 100;
    if (/\/mwh$/.test(u) || u === 'mwh') return 1 / 1000;
    if (/\/kwh$/.test(u) || u === 'kwh') return 1;
    return undefined;
}

const CALLER_FACTOR: Record<Exclude<PriceUnit, 'auto'>, number> = {
    kWh: 1,
    MWh: 1 / 1000,
    'ct/kWh': 1 / 100,
};

interface Located {
    /** Where the entries are in the payload, for messages ("payload.data"). */
    path: string;
    entries: unknown[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Finds the entries in the shapes the tariff nodes send. */
function locate(payload: unknown): Located {
    if (Array.isArray(payload)) return { path: 'payload', entries: payload };
    if (!isRecord(payload)) {
        throw new PriceListError('payload: a price list (an array or an object that holds one)');
    }
    for (const key of ['data', 'priceData', 'prices'] as const) {
        const v = payload[key];
        if (Array.isArray(v)) return { path: `payload.${key}`, entries: v };
    }
    // Tibber: the tibber-query node's answer, or its priceInfo object.
    const viewer = isRecord(payload.viewer) ? payload.viewer : undefined;
    const home = isRecord(viewer?.home)
        ? viewer.home
        : Array.isArray(viewer?.homes) && isRecord(viewer.homes[0])
          ? viewer.homes[0]
          : undefined;
    const subscription = isRecord(home?.currentSubscription) ? home.currentSubscription : undefined;
    const info = isRecord(subscription?.priceInfo)
        ? subscription.priceInfo
        : isRecord(payload.priceInfo)
          ? payload.priceInfo
          : payload;
    const base = info === payload ? 'payload' : 'payload…priceInfo';
    if (Array.isArray(info.today) || Array.isArray(info.tomorrow)) {
        const today = Array.isArray(info.today) ? info.today : [];
        const tomorrow = Array.isArray(info.tomorrow) ? info.tomorrow : [];
        return { path: `${base}.today+tomorrow`, entries: [...today, ...tomorrow] };
    }
    throw new PriceListError(
        'payload: no price list found (expected an array, data, priceData or Tibber priceInfo today/tomorrow)',
    );
}

interface RawSlot {
    start: number;
    end: number | undefined;
    price: number;
    level: number | undefined;
}

function toRaw(kind: Kind, e: Record<string, unknown>, factor: number): RawSlot {
    switch (kind) {
        case 'tibber': {
            const level = e.level;
            return {
                start: e.startsAt as number,
                end: undefined,
                price: (e.total as number) * factor,
                level:
                    typeof level === 'string'
                        ? TIBBER_LEVELS[level]
                        : typeof level === 'number'
                          ? level
                          : undefined,
            };
        }
        case 'awattar':
            return {
                start: e.start_timestamp as number,
                end: e.end_timestamp as number,
                price: (e.marketprice as number) * factor,
                level: undefined,
            };
        case 'startEnd':
            return {
                start: e.start as number,
                end: e.end as number | undefined,
                price: (e.price as number) * factor,
                level: undefined,
            };
        case 'startValue':
            return {
                start: e.start as number,
                end: undefined,
                price: (e.value as number) * factor,
                level: undefined,
            };
    }
}

/**
 * Parses a price list in any of the shapes above. `unit` says how prices of entries without a
 * `unit` field are to be read ('auto': per source, see DEFAULT_FACTOR). Throws a PriceListError
 * that names the first problem; returns the slots sorted by start.
 */
export function parsePriceList(payload: unknown, unit: PriceUnit = 'auto'): PriceSlot[] {
    const { path, entries } = locate(payload);
    if (entries.length === 0) throw new PriceListError(`${path}: no prices`);
    if (entries.length > MAX_PRICE_SLOTS) {
        throw new PriceListError(`${path}: at most ${MAX_PRICE_SLOTS} prices`);
    }
    const topUnit = isRecord(payload) && typeof payload.unit === 'string' ? payload.unit : '';
    const raws: RawSlot[] = entries.map((entry, i) => {
        const at = `${path}[${i}]`;
        const kind = kindOf(entry);
        if (!kind) {
            throw new PriceListError(
                `${at}: not a price entry (expected startsAt+total, start+price, start+value or start_timestamp+marketprice)`,
            );
        }
        const r = ENTRY[kind].safeParse(entry);
        if (!r.success) throw new PriceListError(describeIssues(r.error, at));
        const e = r.data as Record<string, unknown>;
        const named = typeof e.unit === 'string' && e.unit ? e.unit : topUnit;
        let factor: number;
        if (named) {
            const f = factorOfUnit(named);
            if (f === undefined) {
                throw new PriceListError(
                    `${at}.unit: unknown unit ${JSON.stringify(named)} (…/kWh, …/MWh or ct/kWh)`,
                );
            }
            factor = f;
        } else {
            factor = unit === 'auto' ? DEFAULT_FACTOR[kind] : CALLER_FACTOR[unit];
        }
        const raw = toRaw(kind, e, factor);
        if (
            raw.level !== undefined &&
            !(Number.isInteger(raw.level) && raw.level >= 1 && raw.level <= 5)
        ) {
            throw new PriceListError(`${at}.level: must be 1 … 5 or a Tibber level name`);
        }
        return raw;
    });
    raws.sort((a, b) => a.start - b.start);
    // An entry without an end lasts until the next one starts; the last one as long as the one
    // before it (an hour when it is alone).
    const slots: PriceSlot[] = [];
    for (let i = 0; i < raws.length; i++) {
        const r = raws[i]!;
        const next = raws[i + 1];
        if (next && next.start === r.start) {
            throw new PriceListError(`${path}: two prices for ${new Date(r.start).toISOString()}`);
        }
        const previous = slots[i - 1];
        const end =
            r.end ?? next?.start ?? r.start + (previous ? previous.end - previous.start : HOUR_MS);
        if (!(end > r.start)) {
            throw new PriceListError(
                `${path}: the price from ${new Date(r.start).toISOString()} ends before it starts`,
            );
        }
        if (next && end > next.start) {
            throw new PriceListError(
                `${path}: the price from ${new Date(r.start).toISOString()} overlaps the next one`,
            );
        }
        slots.push({ start: r.start, end, price: r.price, level: r.level ?? 0 });
    }
    const average = slots.reduce((t, s) => t + s.price, 0) / slots.length;
    for (const s of slots) if (!s.level) s.level = levelOf(s.price, average);
    return slots;
}

/** The vendor's (Tibber's) level of a price against an average price. */
export function levelOf(price: number, average: number): number {
    if (average <= 0) {
        // No meaningful ratio: a price that pays or costs nothing is very cheap, any other is
        // above an average that is not.
        return price <= 0 ? PRICE_LEVEL.veryCheap : PRICE_LEVEL.veryExpensive;
    }
    const ratio = price / average;
    if (ratio <= 0.6) return PRICE_LEVEL.veryCheap;
    if (ratio <= 0.9) return PRICE_LEVEL.cheap;
    if (ratio < 1.15) return PRICE_LEVEL.normal;
    if (ratio < 1.4) return PRICE_LEVEL.expensive;
    return PRICE_LEVEL.veryExpensive;
}

/** The slot that covers time `t`, if any (slots sorted, not overlapping). */
export function slotAt(slots: readonly PriceSlot[], t: number): PriceSlot | undefined {
    let lo = 0;
    let hi = slots.length - 1;
    while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const s = slots[mid]!;
        if (t < s.start) hi = mid - 1;
        else if (t >= s.end) lo = mid + 1;
        else return s;
    }
    return undefined;
}

/** What rules and formulas read as the price now. */
export interface CurrentPrice {
    /** Per kWh; undefined when nothing says. */
    price: number | undefined;
    level: number | undefined;
    /** Where it came from. */
    source: 'variables' | 'list' | 'none';
}

/**
 * The prices a site knows: the list a flow sent last, and the vendor's own way of setting the
 * price, the CM variables `_set_price` and `_set_price_level` (which win over the list).
 */
export class PriceSource {
    private slotsValue: readonly PriceSlot[] = [];
    /** Bumped on every change (views that cache key on it). */
    revision = 0;

    get slots(): readonly PriceSlot[] {
        return this.slotsValue;
    }

    /** Replaces the list (already validated by parsePriceList). */
    set(slots: readonly PriceSlot[]): void {
        this.slotsValue = [...slots];
        this.revision++;
    }

    clear(): void {
        this.slotsValue = [];
        this.revision++;
    }

    /** The price and level at `now`: the variables where set, else the list's slot. */
    at(now: number, variables?: { price?: number; level?: number }): CurrentPrice {
        const slot = slotAt(this.slotsValue, now);
        const price = variables?.price ?? slot?.price;
        const level = variables?.level ?? slot?.level;
        const source =
            variables?.price !== undefined || variables?.level !== undefined
                ? 'variables'
                : slot
                  ? 'list'
                  : 'none';
        return { price, level, source };
    }
}
