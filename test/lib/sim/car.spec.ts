import assert from 'node:assert/strict';
import { Car } from '../../../lib/sim/car';

function run(car: Car, ms: number, offered: number, dt = 100): void {
    for (let t = 0; t < ms; t += dt) car.step(dt, offered);
}

describe('sim/car', () => {
    it('draws nothing until current is offered', () => {
        const car = new Car({ batteryWh: 60000, soc: 0.5, maxCurrent: 16000, phases: 3 });
        run(car, 5000, 0);
        assert.deepEqual(car.currents, [0, 0, 0]);
        assert.equal(car.powerW, 0);
        assert.equal(car.energyWh, 0);
    });

    it('settles on the offered current within followMs and never exceeds it', () => {
        const car = new Car({ batteryWh: 60000, soc: 0.2, maxCurrent: 16000, phases: 3 });
        let peak = 0;
        for (let t = 0; t < 3000; t += 100) {
            car.step(100, 10000);
            peak = Math.max(peak, car.currents[0]);
        }
        assert.ok(peak <= 10000);
        assert.ok(car.currents[0] >= 9500, `draw ${car.currents[0]}`);
        assert.deepEqual(car.currents, [car.currents[0], car.currents[0], car.currents[0]]);
        // A cut is followed at once.
        car.step(100, 6000);
        assert.ok(car.currents[0] <= 6000);
    });

    it('never draws more than its own maximum, on its own phases only', () => {
        const car = new Car({ batteryWh: 40000, soc: 0.2, maxCurrent: 16000, phases: 1 });
        run(car, 10000, 32000);
        assert.deepEqual(car.currents, [16000, 0, 0]);
        assert.equal(Math.round(car.powerW), 3680);
    });

    it('counts energy and fills its battery, tapering near full, then stops', () => {
        const car = new Car({ batteryWh: 1000, soc: 0.5, maxCurrent: 16000, phases: 3 });
        run(car, 30000, 16000);
        assert.ok(car.energyWh > 0);
        assert.ok(Math.abs(car.soc - (0.5 + car.energyWh / 1000)) < 1e-9);
        run(car, 60 * 60 * 1000, 16000, 1000);
        assert.ok(car.full);
        assert.equal(car.soc, 1);
        assert.ok(Math.abs(car.energyWh - 500) < 1e-6);
        assert.deepEqual(car.currents, [0, 0, 0]);
        assert.equal(car.powerW, 0);
    });

    it('tapers: draws less than offered above 90 %', () => {
        const car = new Car({ batteryWh: 10000, soc: 0.95, maxCurrent: 16000, phases: 3 });
        run(car, 5000, 16000);
        assert.ok(car.currents[0] < 16000 && car.currents[0] > 0);
    });

    it('is deterministic', () => {
        const a = new Car({
            batteryWh: 5000,
            soc: 0.3,
            maxCurrent: 20000,
            phases: 2,
            followMs: 500,
        });
        const b = new Car({
            batteryWh: 5000,
            soc: 0.3,
            maxCurrent: 20000,
            phases: 2,
            followMs: 500,
        });
        for (let i = 0; i < 200; i++) {
            const offered = (i * 7919) % 25000;
            a.step(137, offered);
            b.step(137, offered);
        }
        assert.deepEqual(a.currents, b.currents);
        assert.equal(a.energyWh, b.energyWh);
    });

    it('rejects impossible options', () => {
        assert.throws(() => new Car({ batteryWh: 0, soc: 0.5, maxCurrent: 16000, phases: 3 }));
        assert.throws(() => new Car({ batteryWh: 1, soc: 1.5, maxCurrent: 16000, phases: 3 }));
    });
});
