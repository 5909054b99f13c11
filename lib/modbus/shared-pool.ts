// One bus pool per process, so that every manager and flow node on the same serial port or
// host:port shares one connection and one queue. Buses close when their last user lets go.
import { BusPool } from './pool';

let pool: BusPool | undefined;

export function sharedBusPool(): BusPool {
    pool ??= new BusPool({});
    return pool;
}
