// Errors of the rules layer: real Error objects with a machine-readable code, so that callers
// (the /cnf layer, the editor status) can translate them without parsing messages.

export type FormulaErrorCode =
    /** The text is not a formula of the grammar (bad token, missing operand, unknown function). */
    | 'FORMULA_SYNTAX'
    /** The formula is longer, deeper or larger than the evaluator accepts. */
    | 'FORMULA_LIMIT'
    /** A name has no value (unknown, or not a finite number). */
    | 'FORMULA_NAME'
    /** Division by zero, a negative square root or a result that is not a finite number. */
    | 'FORMULA_MATH';

export class FormulaError extends Error {
    override readonly name = 'FormulaError';

    constructor(
        readonly code: FormulaErrorCode,
        message: string,
        /** Character offset in the formula text (0-based), where known. */
        readonly position?: number,
        options?: { cause?: unknown },
    ) {
        super(message, options);
    }
}

export type VariableErrorCode =
    /** A variable name with characters other than digits and a–z/A–Z. */
    | 'VARIABLE_NAME'
    /** A value that is neither a finite number nor a formula of the grammar. */
    | 'VARIABLE_EXPR'
    /** Variables that reference each other in a circle (through `CM.<name>`). */
    | 'VARIABLE_CYCLE'
    /** A variable whose formula could not be evaluated (unknown name, math error, failed dependency). */
    | 'VARIABLE_EVAL';

export class VariableError extends Error {
    override readonly name = 'VariableError';

    constructor(
        readonly code: VariableErrorCode,
        message: string,
        /** The variable(s) the error is about. */
        readonly variables: readonly string[] = [],
        options?: { cause?: unknown },
    ) {
        super(message, options);
    }
}
