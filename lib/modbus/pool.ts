// Buses shared by every user of the same physical connection, reference-counted by user id:
// two managers (or a manager and a flow node) on one /dev/ttyUSB0 share one client and one
// queue instead of fighting over the port. The bus closes when its last user releases it.
import { type BusAddress, busKey, formatBusAddress, parseBusAddress } from './address';
import { Bus, type BusOptions } from './bus';
import { ModbusError } from './errors';

interface Entry {
    bus: Bus;
    users: Set<string>;
}

export class BusPool {
    private readonly entries = new Map<string, Entry>();
    private closed = false;

    constructor(private readonly defaults: BusOptions = {}) {}

    /**
     * The bus for `address`, opened on first use. `user` is a stable id (a node or device id);
     * acquiring twice with the same id counts once. Options apply when the bus is created.
     */
    acquire(address: BusAddress | string, user: string, options?: BusOptions): Bus {
        if (this.closed) throw new ModbusError('MODBUS_CLOSED', user, 'bus pool closed');
        const parsed = typeof address === 'string' ? parseBusAddress(address) : address;
        const key = busKey(parsed);
        let entry = this.entries.get(key);
        if (entry && entry.bus.state === 'closed') {
            this.entries.delete(key);
            entry = undefined;
        }
        if (!entry) {
            entry = { bus: new Bus(parsed, { ...this.defaults, ...options }), users: new Set() };
            this.entries.set(key, entry);
        } else if (formatBusAddress(entry.bus.address) !== formatBusAddress(parsed)) {
            // Same serial port, other line settings: one of the two configurations is wrong.
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                user,
                `${formatBusAddress(parsed)} conflicts with ${entry.bus.name} already in use`,
            );
        }
        entry.users.add(user);
        entry.bus.open();
        return entry.bus;
    }

    /** Gives up `user`'s share; closes the bus when nobody uses it any more. Never rejects. */
    async release(address: BusAddress | string | Bus, user: string): Promise<void> {
        let key: string;
        try {
            key =
                address instanceof Bus
                    ? address.key
                    : busKey(typeof address === 'string' ? parseBusAddress(address) : address);
        } catch {
            return;
        }
        const entry = this.entries.get(key);
        if (!entry || !entry.users.delete(user) || entry.users.size > 0) return;
        this.entries.delete(key);
        await entry.bus.close();
    }

    /** Number of open buses. */
    get size(): number {
        return this.entries.size;
    }

    users(address: BusAddress | string): string[] {
        const key = busKey(typeof address === 'string' ? parseBusAddress(address) : address);
        return [...(this.entries.get(key)?.users ?? [])];
    }

    /** Closes every bus whoever uses it. */
    async close(): Promise<void> {
        this.closed = true;
        const buses = [...this.entries.values()].map((e) => e.bus);
        this.entries.clear();
        await Promise.all(buses.map((b) => b.close()));
    }
}
