/**
 * The payout actor's lifecycle: the one place that decides every change of a payout and every effect it needs
 * from the outside world. Pure: no I/O, no timers, no `after`, no invoked actors. The runtime (the payout
 * service) rehydrates the persisted snapshot, asks `decide()`, and stores the next snapshot together with the
 * commands it emitted in one statement; the worker executes those commands and sends their results back in.
 *
 *   created ──START──▶ processing ──provider paid──▶ completed
 *      │                   └────provider refused / voided──▶ failed
 *      └──CANCEL──▶ cancelled
 *
 * The public `status` is the top-level state; the child state is the payout's `stage`: which effect is in flight
 * (`submitting`, `voiding`, `confirming`) or that a person is needed (`needs_attention`). At most one provider
 * command is outstanding per payout (`context.command`); a result is accepted only for that command, so a
 * duplicate or late answer can never move a payout twice. An operator's request to fail or complete a payout in
 * flight is recorded and acted on when the outstanding command's result is in: the provider has the last word.
 */
import { and, assign, emit, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';

/** Who sends an event. `system` is the service's own housekeeping (the sweeper). */
export type Role = 'client' | 'operator' | 'worker' | 'system';
export const ROLES: readonly Role[] = ['client', 'operator', 'worker', 'system'];

export interface Sender {
  role: Role;
  /** The API key's id, or the worker's or sweeper's name: recorded in the history as the actor. */
  id: string;
}

export interface PayoutFailure {
  code: string;
  message: string;
}

/** The last thing that went wrong on the way (a provider outage, a dead letter), for the people watching. */
export interface PayoutLastError extends PayoutFailure {
  /** RFC 3339, stamped by the runtime that sent the event (the machine has no clock). */
  at: string;
}

/**
 * An effect the outside world must carry out. `process`: a worker should take the payout up (START). `submit`,
 * `void`, `status`: a call to the provider, always under the payout's own idempotency key. `seq` numbers the
 * payout's commands; a result names the `seq` it answers.
 */
export type PayoutCommandType = 'process' | 'submit' | 'void' | 'status';
export interface PayoutCommand {
  seq: number;
  type: PayoutCommandType;
  /** Which try of this command it is (1 for the first). */
  try: number;
  /** Wait this long before carrying it out: a retry's back-off, as data (0: at once). */
  delay_ms: number;
  /** For `void`: the failure the provider records when nothing was paid under the key. */
  failure?: PayoutFailure;
}

/** An operator's request to resolve a payout in flight, acted on when the outstanding command's result is in. */
export interface ResolutionRequest {
  action: 'succeed' | 'fail';
  reason: string;
  by: Sender;
}

export interface PayoutContext {
  failure: PayoutFailure | null;
  /** Provider submits sent so far (first try and retries). */
  attempts: number;
  /** Sweeper re-drives since the payout last moved on its own. */
  redrives: number;
  /** Commands issued so far; the next one gets `commands + 1`. */
  commands: number;
  /** The one outstanding command, or null. */
  command: PayoutCommand | null;
  request: ResolutionRequest | null;
  last_error: PayoutLastError | null;
}

export type PayoutEvent =
  | { type: 'START'; by: Sender }
  | { type: 'CANCEL'; by: Sender; reason?: string }
  | { type: 'SUCCEED'; by: Sender; reason?: string }
  | { type: 'FAIL'; by: Sender; reason?: string }
  | { type: 'RETRY'; by: Sender; reason?: string }
  | { type: 'REDRIVE'; by: Sender; at: string }
  | { type: 'DEAD_LETTERED'; by: Sender; code: string; message: string; at: string }
  | { type: 'PROVIDER_SUCCEEDED'; by: Sender; seq: number }
  | { type: 'PROVIDER_FAILED'; by: Sender; seq: number; failure: PayoutFailure }
  | { type: 'PROVIDER_NOT_FOUND'; by: Sender; seq: number }
  | { type: 'PROVIDER_UNAVAILABLE'; by: Sender; seq: number; message: string; at: string };
export type PayoutEventType = PayoutEvent['type'];

/** What a transition asks of the runtime besides the new snapshot. */
export type PayoutEffect =
  | { type: 'command'; command: PayoutCommand }
  /** The provider's answer contradicted an operator's request: the history says so. */
  | { type: 'overruled'; requested: ResolutionRequest['action']; outcome: 'completed' | 'failed' };

/** The tunables the machine reads: the retry schedule and the re-drive bound (`RETRY_DELAYS_MS`, `MAX_REDRIVES`). */
export interface PayoutPolicy {
  /** `retryDelaysMs[n]` is the wait before retry n+1; their count is the number of retries of a command. */
  retryDelaysMs: readonly number[];
  /** Re-drives by the sweeper before the payout needs a person. */
  maxRedrives: number;
}

export const DEFAULT_PAYOUT_POLICY: PayoutPolicy = { retryDelaysMs: [1000, 5000, 30000], maxRedrives: 5 };

export const RETRIES_EXHAUSTED: PayoutFailure = {
  code: 'retries_exhausted',
  message: 'The payout could not be processed after every retry.',
};

/** The failure an operator's request to fail records: their reason is the message. */
export const OPERATOR_FAILED_CODE = 'operator_failed';

/** A `{ type: 'sentBy', params: { roles } }` guard: the role rule of a transition, visible in the definition. */
function by(...roles: Role[]) {
  return { type: 'sentBy' as const, params: { roles } };
}

/**
 * Builds the machine for a policy. The definition is the same for every policy (the diagram and the tests read
 * it from `DEFAULT_PAYOUT_POLICY`); only the numbers its guards and actions read differ.
 */
export function createPayoutMachine(policy: PayoutPolicy = DEFAULT_PAYOUT_POLICY) {
  const retries = policy.retryDelaysMs.length;

  /**
   * The next command, numbered after the last one. A submit is the payout's `attempts + 1`-th try (its retries
   * count across a detour through `confirming`); another command's `try` continues when the same command is tried
   * again. Every try after the first waits out its back-off.
   */
  const issue = (
    context: PayoutContext,
    type: PayoutCommandType,
    options: { again?: boolean; failure?: PayoutFailure } = {},
  ): PayoutCommand => {
    const previous = context.command;
    const tryNo =
      type === 'submit'
        ? context.attempts + 1
        : options.again && previous?.type === type
          ? previous.try + 1
          : 1;
    return {
      seq: context.commands + 1,
      type,
      try: tryNo,
      delay_ms: tryNo > 1 ? policy.retryDelaysMs[tryNo - 2]! : 0,
      ...(options.failure ? { failure: options.failure } : {}),
    };
  };

  /** Makes `command` the outstanding one; the `send` action that follows emits it for the runtime to store. */
  const dispatch =
    (make: (context: PayoutContext, event: PayoutEvent) => PayoutCommand, countsAsAttempt = false) =>
    ({ context, event }: { context: PayoutContext; event: PayoutEvent }): Partial<PayoutContext> => {
      const command = make(context, event);
      return {
        command,
        commands: command.seq,
        attempts: countsAsAttempt ? context.attempts + 1 : context.attempts,
        // The payout moved on by itself: the sweeper's count starts again.
        redrives: 0,
      };
    };

  /**
   * A re-drive of a payout in flight: its outstanding command once more, or, past the bound, a person. The same in
   * every processing stage that has a command out (not in `needs_attention`, which the sweeper leaves alone).
   */
  const redriveOrGiveUp = [
    { guard: and([by('system'), 'redrivesLeft']), actions: ['countRedrive', 'resend'] },
    { target: 'needs_attention', guard: by('system'), actions: ['recordRedriveLimit', 'countRedrive'] },
  ] as const;
  /** An operator's retry of a payout that needs a person: its counters start again, its command is issued anew. */
  const retriedByOperator = <Target extends string, Issue extends 'requeue' | 'submit'>(
    target: Target,
    issue: Issue,
  ) =>
    ({
      target,
      guard: and([by('operator'), 'hasReason']),
      actions: ['resetCounters', issue, 'send'],
    }) as const;
  /** The provider could not be reached for a void or a status: the same command again, or, past the retries, a person. */
  const tryAgainOrGiveUp = [
    {
      guard: and([by('worker'), 'answersCommand', 'triesLeft']),
      actions: ['recordLastError', 'tryAgain', 'send'],
    },
    { target: 'needs_attention', guard: and([by('worker'), 'answersCommand']), actions: ['recordLastError'] },
  ] as const;
  /** An operator's request while a provider command is in flight: recorded, acted on when the answer is in. */
  const recordOperatorRequest = {
    guard: and([by('operator'), 'hasReason']),
    actions: 'recordRequest',
  } as const;
  /**
   * What a stage with a submit or a status request in flight accepts besides the provider's answer: an operator's
   * request (recorded) and a re-drive.
   */
  const whileCommandInFlight = {
    SUCCEED: recordOperatorRequest,
    FAIL: recordOperatorRequest,
    REDRIVE: redriveOrGiveUp,
  } as const;

  return setup({
    types: {
      context: {} as PayoutContext,
      events: {} as PayoutEvent,
      emitted: {} as PayoutEffect,
    },
    guards: {
      /** The role rule: who may send this event here. */
      sentBy: ({ event }: { event: PayoutEvent }, params: { roles: readonly Role[] }) =>
        params.roles.includes(event.by.role),
      /** Operators resolving or retrying a payout by hand must say why. */
      hasReason: ({ event }: { event: PayoutEvent }) =>
        'reason' in event && typeof event.reason === 'string' && event.reason.trim() !== '',
      /** A result answers the outstanding command, not an earlier or duplicate one. */
      answersCommand: ({ context, event }) =>
        'seq' in event && context.command !== null && context.command.seq === event.seq,
      triesLeft: ({ context }) => context.command !== null && context.command.try <= retries,
      redrivesLeft: ({ context }) => context.redrives < policy.maxRedrives,
      failRequested: ({ context }) => context.request?.action === 'fail',
      succeedRequested: ({ context }) => context.request?.action === 'succeed',
    },
    actions: {
      /** The next try of the submit: the first on START, then after each unavailability or a detour. */
      submit: assign(dispatch((context) => issue(context, 'submit'), true)),
      requeue: assign(dispatch((context) => issue(context, 'process'))),
      voidForRequest: assign(
        dispatch((context) =>
          issue(context, 'void', {
            failure: {
              code: OPERATOR_FAILED_CODE,
              message: context.request?.reason ?? 'Failed by an operator.',
            },
          }),
        ),
      ),
      voidForOperator: assign(
        dispatch((context, event) =>
          issue(context, 'void', {
            failure: { code: OPERATOR_FAILED_CODE, message: 'reason' in event ? (event.reason ?? '') : '' },
          }),
        ),
      ),
      voidExhausted: assign(dispatch((context) => issue(context, 'void', { failure: RETRIES_EXHAUSTED }))),
      confirm: assign(dispatch((context) => issue(context, 'status'))),
      /** The outstanding command once more, its next try (after its back-off). */
      tryAgain: assign(
        dispatch((context) =>
          issue(context, context.command!.type, { again: true, failure: context.command?.failure }),
        ),
      ),
      /** Emits the outstanding command for the runtime to store: after every action that issues one. */
      send: emit(({ context }) => ({ type: 'command' as const, command: context.command! })),
      /** Sends the outstanding command once more under its own number, at once (a re-drive after a lost message). */
      resend: emit(({ context }) => ({
        type: 'command' as const,
        command: { ...context.command!, delay_ms: 0 },
      })),
      countRedrive: assign({ redrives: ({ context }) => context.redrives + 1 }),
      /** A person takes over: the retries and re-drives start again. */
      resetCounters: assign({ redrives: 0, attempts: 0 }),
      /** The operator's request is answered without settling the payout (the provider holds nothing yet). */
      clearRequest: assign({ request: null }),
      recordRequest: assign({
        request: ({ event }) =>
          event.type === 'SUCCEED' || event.type === 'FAIL'
            ? {
                action: event.type === 'SUCCEED' ? ('succeed' as const) : ('fail' as const),
                reason: event.reason ?? '',
                by: event.by,
              }
            : null,
      }),
      recordLastError: assign({
        last_error: ({ event, context }) => {
          if (event.type === 'PROVIDER_UNAVAILABLE')
            return { code: 'provider_unavailable', message: event.message, at: event.at };
          if (event.type === 'DEAD_LETTERED')
            return { code: event.code, message: event.message, at: event.at };
          return context.last_error;
        },
      }),
      recordRedriveLimit: assign({
        last_error: ({ context, event }) => ({
          code: 'redrive_limit',
          message: `Re-driven ${context.redrives} times without finishing.`,
          at: event.type === 'REDRIVE' ? event.at : '',
        }),
      }),
      recordFailure: assign({
        failure: ({ event, context }) => (event.type === 'PROVIDER_FAILED' ? event.failure : context.failure),
      }),
      /** The command is answered (or abandoned): nothing is outstanding any more. */
      settle: assign({ command: null }),
      /** The payout is final: nothing is outstanding, and the operator's request, if any, is answered. */
      close: assign({ command: null, request: null }),
    },
  }).createMachine({
    id: 'payout',
    initial: 'created',
    context: {
      failure: null,
      attempts: 0,
      redrives: 0,
      commands: 1,
      // A new payout's processing message is its first command: the create stores it with the payout.
      command: { seq: 1, type: 'process', try: 1, delay_ms: 0 },
      request: null,
      last_error: null,
    },
    states: {
      created: {
        description: 'Accepted and stored; not yet handed to the provider.',
        initial: 'queued',
        on: {
          CANCEL: { target: 'cancelled', guard: by('client', 'operator'), actions: 'settle' },
        },
        states: {
          queued: {
            description: 'Waiting for a worker.',
            on: {
              START: {
                target: '#payout.processing.submitting',
                guard: by('worker'),
                actions: ['submit', 'send'],
              },
              REDRIVE: [
                { guard: and([by('system'), 'redrivesLeft']), actions: ['countRedrive', 'resend'] },
                {
                  target: 'needs_attention',
                  guard: by('system'),
                  actions: ['recordRedriveLimit', 'countRedrive', 'settle'],
                },
              ],
              DEAD_LETTERED: {
                target: 'needs_attention',
                guard: by('worker', 'system'),
                actions: ['recordLastError', 'settle'],
              },
            },
          },
          needs_attention: {
            description: 'Its message kept failing or was dead-lettered: a person decides (retry or cancel).',
            on: {
              RETRY: retriedByOperator('queued', 'requeue'),
            },
          },
        },
      },
      processing: {
        description: 'Handed to the provider; the stage says which provider command is in flight.',
        initial: 'submitting',
        on: {
          // The outstanding command's answer settles the payout, whatever stage it is in.
          PROVIDER_SUCCEEDED: {
            target: 'completed',
            guard: and([by('worker'), 'answersCommand']),
            actions: 'close',
          },
          PROVIDER_FAILED: {
            target: 'failed',
            guard: and([by('worker'), 'answersCommand']),
            actions: ['recordFailure', 'close'],
          },
          DEAD_LETTERED: {
            target: '.needs_attention',
            guard: by('worker', 'system'),
            actions: ['recordLastError'],
          },
        },
        states: {
          submitting: {
            description: 'A submit is in flight (or waiting out its back-off).',
            on: {
              PROVIDER_UNAVAILABLE: [
                {
                  target: 'voiding',
                  guard: and([by('worker'), 'answersCommand', 'failRequested']),
                  actions: ['recordLastError', 'voidForRequest', 'send'],
                },
                {
                  target: 'confirming',
                  guard: and([by('worker'), 'answersCommand', 'succeedRequested']),
                  actions: ['recordLastError', 'confirm', 'send'],
                },
                {
                  target: 'submitting',
                  guard: and([by('worker'), 'answersCommand', 'triesLeft']),
                  actions: ['recordLastError', 'submit', 'send'],
                },
                {
                  target: 'voiding',
                  guard: and([by('worker'), 'answersCommand']),
                  actions: ['recordLastError', 'voidExhausted', 'send'],
                },
              ],
              ...whileCommandInFlight,
            },
          },
          voiding: {
            description:
              'Closing the provider key so that nothing can be paid under it; a payment already there wins.',
            on: {
              PROVIDER_UNAVAILABLE: tryAgainOrGiveUp,
              REDRIVE: redriveOrGiveUp,
            },
          },
          confirming: {
            description:
              'Asking the provider whether it paid, before an operator’s request to complete is honoured.',
            on: {
              PROVIDER_NOT_FOUND: [
                {
                  target: 'voiding',
                  guard: and([by('worker'), 'answersCommand', 'failRequested']),
                  actions: ['voidForRequest', 'send'],
                },
                {
                  target: 'submitting',
                  guard: and([by('worker'), 'answersCommand']),
                  actions: ['clearRequest', 'submit', 'send'],
                },
              ],
              PROVIDER_UNAVAILABLE: tryAgainOrGiveUp,
              ...whileCommandInFlight,
            },
          },
          needs_attention: {
            description:
              'Retries, re-drives or the dead-letter queue gave up: a person decides (retry, fail or complete). ' +
              'A late answer of the last command still settles it.',
            on: {
              RETRY: retriedByOperator('submitting', 'submit'),
              FAIL: {
                target: 'voiding',
                guard: and([by('operator'), 'hasReason']),
                actions: ['resetCounters', 'recordRequest', 'voidForOperator', 'send'],
              },
              SUCCEED: {
                target: 'confirming',
                guard: and([by('operator'), 'hasReason']),
                actions: ['resetCounters', 'recordRequest', 'confirm', 'send'],
              },
            },
          },
        },
      },
      completed: { type: 'final', description: 'The provider paid: the money has left.' },
      failed: {
        type: 'final',
        description: 'The provider refused, or the key was voided with nothing paid; see `failure`.',
      },
      cancelled: { type: 'final', description: 'Cancelled before processing started.' },
    },
  });
}

export type PayoutMachine = ReturnType<typeof createPayoutMachine>;
export type PayoutSnapshot = SnapshotFrom<PayoutMachine>;
