// The README's table of supported Modbus devices, made from the built-in definitions so that it
// cannot drift from them (test/scripts/readme-devices.spec.ts; `npm run readme:devices` rewrites it).
import type { ParsedDefinition } from './definition';

export const TABLE_START = '<!-- supported-devices:start (npm run readme:devices) -->';
export const TABLE_END = '<!-- supported-devices:end -->';

const READINGS: [keyof ParsedDefinition['readings'], string][] = [
    ['currentsA', 'currents'],
    ['powerW', 'power'],
    ['phasePowersW', 'phase powers'],
    ['voltagesV', 'voltages'],
    ['energyWh', 'energy'],
    ['importWh', 'import energy'],
    ['exportWh', 'export energy'],
    ['rfid', 'card'],
];

function connection(d: ParsedDefinition): string {
    const fc = d.fc === 4 ? 'input registers' : 'holding registers';
    if (d.sunspec) return `Modbus TCP/RTU, SunSpec models ${d.sunspec.models.join(', ')}`;
    return `Modbus TCP/RTU, unit ${d.unit}, ${fc}`;
}

function reads(d: ParsedDefinition): string {
    const out: string[] = [];
    if (d.kind === 'evse') out.push('state');
    for (const [key, name] of READINGS) if (d.readings[key]) out.push(name);
    const identity = (['model', 'serial', 'firmware'] as const).filter((k) => d.readings[k]);
    if (d.sunspec) out.push('maker, model, serial');
    else if (identity.length) out.push(identity.join(', '));
    return out.join(', ');
}

function unit(scale: number): string {
    return scale === 1 ? '1 A' : `${scale} A`;
}

function controls(d: ParsedDefinition): string {
    const c = d.control;
    if (!c) return '–';
    const out = [
        `current (${unit(c.current.scale)}, ${c.current.min}–${c.current.max} A${c.current.zeroStops ? ', 0 stops' : ''})`,
    ];
    if (c.enable) out.push('enable');
    if (c.phases) out.push('1/3 phases');
    if (c.failSafe) out.push('own fail-safe');
    if (c.keepAlive) out.push('keep-alive');
    return out.join(', ');
}

/** The Markdown table, one row per definition, in the list's order. */
export function supportedDevicesTable(defs: readonly ParsedDefinition[]): string {
    const rows = defs.map(
        (d) => `| \`${d.type}\` | ${d.title} | ${connection(d)} | ${reads(d)} | ${controls(d)} |`,
    );
    return [
        '| dev_type | Device | Connection | Reads | Controls |',
        '| --- | --- | --- | --- | --- |',
        ...rows,
    ].join('\n');
}

/** The README with its table replaced by `table` (throws when the markers are missing). */
export function withTable(readme: string, table: string): string {
    const a = readme.indexOf(TABLE_START);
    const b = readme.indexOf(TABLE_END);
    if (a < 0 || b < a) throw new Error('README: the supported-devices markers are missing');
    return `${readme.slice(0, a + TABLE_START.length)}\n\n${table}\n\n${readme.slice(b)}`;
}
