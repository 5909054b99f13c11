// Which Modbus device types exist: the built-in definitions, the user's own (the `device_defs`
// parameter) and `meter_modbus`, whose register map comes with each device. get_dev_types,
// dev_meta, the device table's checks and the driver factory all ask here.
import type { DeviceDefinition, ParsedDefinition } from './definition';
import { DefinitionError, parseDefinition, runnableDefinitionSchema } from './defined-device';
import { BUILT_IN_DEFINITIONS } from './definitions';

/** Modbus types without a definition of their own. */
export const MAP_METER_TYPE = 'meter_modbus';
const MAP_METER_TITLE = 'Modbus meter (register map)';

/** A user's definition types start like this, so that no later built-in type can take theirs. */
export const USER_TYPE = /^(evse|meter|inverter)_user_[a-z0-9_]+$/;

let builtIns: ReadonlyMap<string, ParsedDefinition> | undefined;

/** The built-in definitions by type, checked once (a bad or repeated one is a programming error). */
export function builtInDefinitions(): ReadonlyMap<string, ParsedDefinition> {
    if (builtIns) return builtIns;
    const map = new Map<string, ParsedDefinition>();
    BUILT_IN_DEFINITIONS.forEach((d, i) => {
        const parsed = parseDefinition(d, `BUILT_IN_DEFINITIONS[${i}]`);
        if (map.has(parsed.type) || parsed.type === MAP_METER_TYPE) {
            throw new DefinitionError(`built-in device type ${parsed.type} is defined twice`);
        }
        map.set(parsed.type, parsed);
    });
    builtIns = map;
    return map;
}

export interface DefinitionProblem {
    /** Path inside the list: `[1, 'readings', 'powerW', 'address']`. */
    path: (string | number)[];
    message: string;
}

/** What is wrong with a list of user definitions (empty: nothing). */
export function userDefinitionProblems(input: unknown): DefinitionProblem[] {
    if (input === undefined) return [];
    if (!Array.isArray(input)) return [{ path: [], message: 'must be an array' }];
    if (input.length > 100) return [{ path: [], message: 'at most 100 definitions' }];
    const problems: DefinitionProblem[] = [];
    const seen = new Set<string>();
    input.forEach((raw, i) => {
        const r = runnableDefinitionSchema.safeParse(raw);
        if (!r.success) {
            for (const issue of r.error.issues) {
                problems.push({
                    path: [i, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
                    message: issue.message,
                });
            }
            return;
        }
        const d = r.data;
        const type = (message: string) => problems.push({ path: [i, 'type'], message });
        if (!USER_TYPE.test(d.type)) {
            type("a user definition's type starts with evse_user_, meter_user_ or inverter_user_");
        } else if (d.kind === 'evse' ? !d.type.startsWith('evse_') : d.type.startsWith('evse_')) {
            type(
                d.kind === 'evse'
                    ? 'a wallbox type starts with evse_'
                    : 'a meter type starts with meter_ or inverter_',
            );
        } else if (seen.has(d.type)) {
            type(`${d.type} is defined twice`);
        }
        seen.add(d.type);
    });
    return problems;
}

/**
 * The user's definitions (as a set_params client or the editor sends them), each checked by the
 * schema; errors name the field, e.g. `device_defs[1].readings.powerW.address: …`.
 */
export function parseUserDefinitions(input: unknown, prefix = 'device_defs'): ParsedDefinition[] {
    const problems = userDefinitionProblems(input);
    if (problems.length) {
        throw new DefinitionError(
            problems
                .slice(0, 3)
                .map(
                    (p) =>
                        `${prefix}${p.path.map((x) => (typeof x === 'number' ? `[${x}]` : `.${x}`)).join('')}: ${p.message}`,
                )
                .join('; '),
        );
    }
    return ((input ?? []) as unknown[]).map((d) => parseDefinition(d));
}

/** The definition of a type: the user's first (they cannot shadow a built-in one), else built in. */
export function findDefinition(
    type: string,
    user: readonly DeviceDefinition[] = [],
): ParsedDefinition | undefined {
    const own = user.find((d) => d.type === type);
    if (own) return parseDefinition(own);
    return builtInDefinitions().get(type);
}

/** Modbus device types with their display names, built-in first, then the user's. */
export function modbusDevTypes(user: readonly DeviceDefinition[] = []): Record<string, string> {
    const out: Record<string, string> = {};
    for (const d of builtInDefinitions().values()) out[d.type] = d.title;
    out[MAP_METER_TYPE] = MAP_METER_TITLE;
    for (const d of user) out[d.type] = d.title;
    return out;
}

/** Whether a Modbus driver (a definition or the register-map meter) serves this type. */
export function isModbusDevType(type: string, user: readonly DeviceDefinition[] = []): boolean {
    return (
        type === MAP_METER_TYPE ||
        builtInDefinitions().has(type) ||
        user.some((d) => d.type === type)
    );
}
