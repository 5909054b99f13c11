// Tokenizer and recursive-descent parser for the vendor's formula language (charging rules,
// formula-valued limits, CM variables). The grammar, loosest binding first:
//
//   formula  := cond EOF
//   cond     := or [ '?' cond ':' cond ]                  right-associative
//   or       := and { '||' and }
//   and      := bitor { '&&' bitor }
//   bitor    := bitand { '|' bitand }
//   bitand   := equal { '&' equal }
//   equal    := compare { ('==' | '!=') compare }
//   compare  := sum { ('<' | '<=' | '>' | '>=') sum }
//   sum      := product { ('+' | '-') product }
//   product  := unary { ('*' | '/' | '%') unary }
//   unary    := ('-' | '+' | '!') unary | power
//   power    := primary [ '^' unary ]                     right-associative: 2^3^2 = 2^9
//   primary  := number | name | function '(' args ')' | 'exists' '(' name ')' | '(' cond ')'
//   name     := [A-Za-z_][A-Za-z0-9_]* { '.' [A-Za-z0-9_]+ }     e.g. CM.AVAIL, M3.current_l1
//
// The binary operators keep C's order (the vendor's engine is C++): `a & b == c` is
// `a & (b == c)`. `^` is the power operator (vendor: "10^2 = 100") and binds tighter than a
// unary minus on its left: -2^2 = -4. Nothing here executes code: the output is a plain tree.

import { FormulaError } from './errors';

/** Longest formula text accepted (characters). */
export const MAX_FORMULA_LENGTH = 2000;
/** Deepest nesting of parentheses, function calls, unary operators, powers and conditionals. */
export const MAX_NESTING_DEPTH = 64;
/** Largest syntax tree accepted (nodes). */
export const MAX_AST_NODES = 1000;

export type BinaryOperator =
    | '+'
    | '-'
    | '*'
    | '/'
    | '%'
    | '&'
    | '|'
    | '^'
    | '<'
    | '<='
    | '>'
    | '>='
    | '=='
    | '!='
    | '&&'
    | '||';

export type UnaryOperator = '-' | '+' | '!';

/** Functions of the language and how many arguments each takes. */
export const FUNCTION_ARITY = {
    min: { min: 1, max: Infinity },
    max: { min: 1, max: Infinity },
    abs: { min: 1, max: 1 },
    clamp: { min: 3, max: 3 },
    round: { min: 1, max: 1 },
    sqrt: { min: 1, max: 1 },
    floor: { min: 1, max: 1 },
    ceil: { min: 1, max: 1 },
} as const;
export type FunctionName = keyof typeof FUNCTION_ARITY;

export type FormulaNode =
    | { readonly type: 'number'; readonly value: number; readonly pos: number }
    | { readonly type: 'name'; readonly name: string; readonly pos: number }
    | {
          readonly type: 'unary';
          readonly op: UnaryOperator;
          readonly operand: FormulaNode;
          readonly pos: number;
      }
    | {
          readonly type: 'binary';
          readonly op: BinaryOperator;
          readonly left: FormulaNode;
          readonly right: FormulaNode;
          readonly pos: number;
      }
    | {
          readonly type: 'conditional';
          readonly test: FormulaNode;
          readonly then: FormulaNode;
          readonly otherwise: FormulaNode;
          readonly pos: number;
      }
    | {
          readonly type: 'call';
          readonly fn: FunctionName;
          readonly args: readonly FormulaNode[];
          readonly pos: number;
      }
    | { readonly type: 'exists'; readonly name: string; readonly pos: number };

type TokenKind = 'number' | 'name' | 'op' | 'end';
interface Token {
    readonly kind: TokenKind;
    readonly text: string;
    readonly pos: number;
    readonly value?: number;
}

const TWO_CHAR_OPS = new Set(['<=', '>=', '==', '!=', '&&', '||']);
const ONE_CHAR_OPS = new Set([
    '+',
    '-',
    '*',
    '/',
    '%',
    '&',
    '|',
    '^',
    '<',
    '>',
    '!',
    '?',
    ':',
    '(',
    ')',
    ',',
]);

const NUMBER_RE = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/y;
const WHITESPACE_RE = /[ \t\r\n]+/y;

/** Words that number parsers (JavaScript's, C's strtod) take for numbers: never names. */
const NUMBER_WORD_RE = /^(?:nan|inf|infinity)$/i;

/**
 * Whether text is a name a formula can read after `CM.` and that means nothing else: digits and
 * letters a–z, A–Z, and not a word such as NaN or Infinity.
 */
export function isVariableName(text: string): boolean {
    return /^[A-Za-z0-9]+$/.test(text) && !NUMBER_WORD_RE.test(text);
}

function syntaxError(message: string, pos: number): FormulaError {
    return new FormulaError('FORMULA_SYNTAX', `${message} at ${pos}`, pos);
}

/** Shows a character in an error message; control characters as their code point. */
function showChar(ch: string): string {
    const code = ch.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f ? `U+${code.toString(16).padStart(4, '0')}` : `'${ch}'`;
}

export function tokenize(src: string): Token[] {
    const tokens: Token[] = [];
    let pos = 0;
    const matchAt = (re: RegExp): string | undefined => {
        re.lastIndex = pos;
        return re.exec(src)?.[0];
    };
    while (pos < src.length) {
        const space = matchAt(WHITESPACE_RE);
        if (space) {
            pos += space.length;
            continue;
        }
        const ch = src[pos]!;
        if ((ch >= '0' && ch <= '9') || ch === '.') {
            const text = matchAt(NUMBER_RE);
            if (!text) throw syntaxError(`unexpected '.'`, pos);
            const value = Number(text);
            if (!Number.isFinite(value)) throw syntaxError(`number ${text} out of range`, pos);
            const next = src[pos + text.length];
            // "2x" or "1.5.3" is a typo, not two tokens
            if (next !== undefined && /[A-Za-z0-9_.]/.test(next)) {
                throw syntaxError(`unexpected ${showChar(next)}`, pos + text.length);
            }
            tokens.push({ kind: 'number', text, pos, value });
            pos += text.length;
            continue;
        }
        const name = matchAt(NAME_RE);
        if (name) {
            if (src[pos + name.length] === '.') {
                throw syntaxError(`unexpected '.'`, pos + name.length);
            }
            const word = name.split('.').find((part) => NUMBER_WORD_RE.test(part));
            if (word !== undefined) throw syntaxError(`'${word}' is not a name`, pos);
            tokens.push({ kind: 'name', text: name, pos });
            pos += name.length;
            continue;
        }
        const two = src.slice(pos, pos + 2);
        if (TWO_CHAR_OPS.has(two)) {
            tokens.push({ kind: 'op', text: two, pos });
            pos += 2;
            continue;
        }
        if (ONE_CHAR_OPS.has(ch)) {
            tokens.push({ kind: 'op', text: ch, pos });
            pos += 1;
            continue;
        }
        if (ch === '=') throw syntaxError(`unexpected '=' (compare with '==')`, pos);
        throw syntaxError(
            `unexpected character ${showChar(String.fromCodePoint(src.codePointAt(pos)!))}`,
            pos,
        );
    }
    tokens.push({ kind: 'end', text: '', pos: src.length });
    return tokens;
}

/** Binding strength of the left-associative binary operators (higher binds tighter). */
const BINARY_PRECEDENCE: Readonly<Record<string, number>> = {
    '||': 1,
    '&&': 2,
    '|': 3,
    '&': 4,
    '==': 5,
    '!=': 5,
    '<': 6,
    '<=': 6,
    '>': 6,
    '>=': 6,
    '+': 7,
    '-': 7,
    '*': 8,
    '/': 8,
    '%': 8,
};

function describe(token: Token): string {
    return token.kind === 'end' ? 'end of formula' : `'${token.text}'`;
}

class Parser {
    private index = 0;
    private depth = 0;
    private nodes = 0;
    readonly names = new Set<string>();

    constructor(private readonly tokens: Token[]) {}

    parse(): FormulaNode {
        const root = this.conditional();
        const rest = this.peek();
        if (rest.kind !== 'end') throw syntaxError(`unexpected ${describe(rest)}`, rest.pos);
        return root;
    }

    private peek(): Token {
        return this.tokens[this.index]!;
    }

    private next(): Token {
        const token = this.tokens[this.index]!;
        if (token.kind !== 'end') this.index++;
        return token;
    }

    private isOp(text: string): boolean {
        const token = this.peek();
        return token.kind === 'op' && token.text === text;
    }

    private expect(text: string): Token {
        const token = this.next();
        if (token.kind !== 'op' || token.text !== text) {
            throw syntaxError(`expected '${text}' but found ${describe(token)}`, token.pos);
        }
        return token;
    }

    private node<T extends FormulaNode>(node: T): T {
        if (++this.nodes > MAX_AST_NODES) {
            throw new FormulaError(
                'FORMULA_LIMIT',
                `formula too large: more than ${MAX_AST_NODES} elements at ${node.pos}`,
                node.pos,
            );
        }
        return node;
    }

    /** Runs a nested parse, refusing to go deeper than MAX_NESTING_DEPTH. */
    private nested<T>(pos: number, parse: () => T): T {
        if (++this.depth > MAX_NESTING_DEPTH) {
            throw new FormulaError(
                'FORMULA_LIMIT',
                `formula nested too deeply: more than ${MAX_NESTING_DEPTH} levels at ${pos}`,
                pos,
            );
        }
        try {
            return parse();
        } finally {
            this.depth--;
        }
    }

    private conditional(): FormulaNode {
        const test = this.binary(1);
        if (!this.isOp('?')) return test;
        const question = this.next();
        return this.nested(question.pos, () => {
            const then = this.conditional();
            this.expect(':');
            const otherwise = this.conditional();
            return this.node({ type: 'conditional', test, then, otherwise, pos: question.pos });
        });
    }

    private binary(minPrecedence: number): FormulaNode {
        let left = this.unary();
        for (;;) {
            const token = this.peek();
            const precedence = token.kind === 'op' ? BINARY_PRECEDENCE[token.text] : undefined;
            if (precedence === undefined || precedence < minPrecedence) return left;
            this.next();
            const right = this.binary(precedence + 1);
            left = this.node({
                type: 'binary',
                op: token.text as BinaryOperator,
                left,
                right,
                pos: token.pos,
            });
        }
    }

    private unary(): FormulaNode {
        const token = this.peek();
        if (
            token.kind === 'op' &&
            (token.text === '-' || token.text === '+' || token.text === '!')
        ) {
            this.next();
            const operand = this.nested(token.pos, () => this.unary());
            return this.node({ type: 'unary', op: token.text, operand, pos: token.pos });
        }
        return this.power();
    }

    private power(): FormulaNode {
        const base = this.primary();
        if (!this.isOp('^')) return base;
        const caret = this.next();
        const exponent = this.nested(caret.pos, () => this.unary());
        return this.node({ type: 'binary', op: '^', left: base, right: exponent, pos: caret.pos });
    }

    private primary(): FormulaNode {
        const token = this.next();
        if (token.kind === 'number') {
            return this.node({ type: 'number', value: token.value!, pos: token.pos });
        }
        if (token.kind === 'name') {
            if (!this.isOp('(')) {
                this.names.add(token.text);
                return this.node({ type: 'name', name: token.text, pos: token.pos });
            }
            return this.nested(token.pos, () => this.call(token));
        }
        if (token.kind === 'op' && token.text === '(') {
            return this.nested(token.pos, () => {
                const inner = this.conditional();
                this.expect(')');
                return inner;
            });
        }
        throw syntaxError(`unexpected ${describe(token)}`, token.pos);
    }

    private call(fnToken: Token): FormulaNode {
        const fn = fnToken.text;
        this.expect('(');
        if (fn === 'exists') {
            const arg = this.next();
            if (arg.kind !== 'name') {
                throw syntaxError(`exists() takes a name, found ${describe(arg)}`, arg.pos);
            }
            this.expect(')');
            this.names.add(arg.text);
            return this.node({ type: 'exists', name: arg.text, pos: fnToken.pos });
        }
        if (!Object.hasOwn(FUNCTION_ARITY, fn)) {
            throw syntaxError(`unknown function '${fn}'`, fnToken.pos);
        }
        const arity = FUNCTION_ARITY[fn as FunctionName];
        const args: FormulaNode[] = [];
        if (!this.isOp(')')) {
            args.push(this.conditional());
            while (this.isOp(',')) {
                this.next();
                args.push(this.conditional());
            }
        }
        this.expect(')');
        if (args.length < arity.min || args.length > arity.max) {
            const wanted =
                arity.min === arity.max
                    ? `${arity.min} argument${arity.min === 1 ? '' : 's'}`
                    : `at least ${arity.min} argument${arity.min === 1 ? '' : 's'}`;
            throw syntaxError(`${fn}() takes ${wanted}, got ${args.length}`, fnToken.pos);
        }
        return this.node({ type: 'call', fn: fn as FunctionName, args, pos: fnToken.pos });
    }
}

export interface ParsedFormula {
    readonly root: FormulaNode;
    /** Every name the formula reads, including those only tested with exists(). */
    readonly names: ReadonlySet<string>;
}

/** Parses formula text into a syntax tree; throws a FormulaError naming the position. */
export function parseToTree(src: string): ParsedFormula {
    if (typeof src !== 'string') {
        throw new FormulaError('FORMULA_SYNTAX', 'a formula must be text');
    }
    if (src.length > MAX_FORMULA_LENGTH) {
        throw new FormulaError(
            'FORMULA_LIMIT',
            `formula too long: ${src.length} characters, at most ${MAX_FORMULA_LENGTH}`,
            MAX_FORMULA_LENGTH,
        );
    }
    const tokens = tokenize(src);
    if (tokens.length === 1) throw new FormulaError('FORMULA_SYNTAX', 'empty formula at 0', 0);
    const parser = new Parser(tokens);
    const root = parser.parse();
    return { root, names: parser.names };
}
