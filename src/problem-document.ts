/**
 * The one shape of every error answer, on every port: RFC 9457 `application/problem+json` with our `code` and
 * `urn:payouts:problem:<code>` as its type. The API's error middleware, the HTTP server's answer to requests Node's
 * parser refuses, and the roles' operations server all render through here.
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemFields {
  code: string;
  title: string;
  status: number;
  detail: string;
  requestId?: string;
  errors?: ReadonlyArray<{ pointer: string; message: string }>;
  /** Further members, e.g. `available_actions`; never overwriting the standard ones. */
  extensions?: Record<string, unknown>;
}

/** Members of the problem document the standard defines; an extension never overwrites them. */
const RESERVED = new Set(['type', 'title', 'status', 'detail', 'instance', 'code', 'request_id', 'errors']);

export function problemDocument(problem: ProblemFields): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: `urn:payouts:problem:${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
  };
  if (problem.requestId !== undefined) body.request_id = problem.requestId;
  if (problem.errors !== undefined) body.errors = problem.errors;
  for (const [key, value] of Object.entries(problem.extensions ?? {})) {
    if (!RESERVED.has(key)) body[key] = value;
  }
  return body;
}
