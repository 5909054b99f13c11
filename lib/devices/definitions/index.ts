// The built-in device definitions: one entry per family, each in its own file beside this one.
// The registry (lib/devices/registry.ts) and the README's table of supported devices read this list.
import type { DeviceDefinition } from '../definition';

export const BUILT_IN_DEFINITIONS: readonly DeviceDefinition[] = [];
