// Charge point passwords (OCPP security profiles 1 and 2: HTTP Basic) are kept only as scrypt
// hashes, so that a stored configuration or a listing never reveals one.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const PREFIX = 'scrypt$';
const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

export function isPasswordHash(value: string): boolean {
    return value.startsWith(PREFIX) && value.split('$').length === 6;
}

/** `scrypt$N$r$p$salt$hash` (base64). */
export function hashPassword(password: string): string {
    const salt = randomBytes(16);
    const hash = scryptSync(password, salt, KEYLEN, { N, r: R, p: P });
    return `${PREFIX}${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether a password (as the Basic header carried it) matches a stored hash; never throws. */
export async function verifyPassword(password: Buffer | string, stored: string): Promise<boolean> {
    if (!isPasswordHash(stored)) return false;
    const [, n, r, p, salt, hash] = stored.split('$') as [string, ...string[]];
    const expected = Buffer.from(hash ?? '', 'base64');
    try {
        const actual = await new Promise<Buffer>((resolve, reject) =>
            scrypt(
                password,
                Buffer.from(salt ?? '', 'base64'),
                expected.length,
                { N: Number(n), r: Number(r), p: Number(p) },
                (err, key) => (err ? reject(err) : resolve(key)),
            ),
        );
        return actual.length === expected.length && timingSafeEqual(actual, expected);
    } catch {
        return false;
    }
}
