/**
 * A frontend's first session against the NATO Multimedia API, typed end to end by the types
 * `openapi-typescript` generates from the API document (src/api.d.ts):
 * register, verify the email with the code it was sent, log in, refresh, list videos, get a
 * signed download URL (and check it with HEAD), list articles; then the account page: download
 * history, language, sessions, export, a new address (its code is the second line read),
 * a new password, log out everywhere, delete the account.
 *
 *   NATOMEDIA_API_URL=http://127.0.0.1:8000 NATOMEDIA_EMAIL=me@example.org node dist/main.js
 *
 * The codes are read from standard input, as a user would type them. Each step prints
 * one JSON line; the process exits non-zero on the first unexpected answer.
 */
import { createInterface } from "node:readline/promises";

import type { components, operations, paths } from "./api.js";

type OperationId = keyof operations;
type Method = "get" | "put" | "post" | "delete" | "patch" | "head";
type Responses<Op extends OperationId> = operations[Op]["responses"];
type Json<T> = T extends { content: { "application/json": infer Body } } ? Body : never;

/** The [method, path] pairs the document declares for an operation. */
type RouteOf<Op extends OperationId> = {
  [P in keyof paths]: {
    [M in Method]: paths[P][M] extends operations[Op]
      ? operations[Op] extends paths[P][M]
        ? [M, P]
        : never
      : never;
  }[Method];
}[keyof paths];

type SuccessStatus<Op extends OperationId> = Extract<keyof Responses<Op>, 200 | 201 | 202 | 204>;
type PathParams<Op extends OperationId> = operations[Op]["parameters"] extends {
  path: infer Params;
}
  ? Params
  : never;
type QueryParams<Op extends OperationId> = operations[Op]["parameters"] extends {
  query?: infer Query;
}
  ? Query
  : never;

/** Every problem+json body the operation documents: `code` is a union of string literals. */
export type ProblemOf<Op extends OperationId> = {
  [S in keyof Responses<Op>]: Responses<Op>[S] extends {
    content: { "application/problem+json": infer Problem };
  }
    ? Problem
    : never;
}[keyof Responses<Op>];

interface Options<Op extends OperationId> {
  token?: string;
  body?: Json<operations[Op]["requestBody"]>;
  path?: PathParams<Op>;
  query?: QueryParams<Op>;
}

export class ApiError<Op extends OperationId> extends Error {
  constructor(
    readonly operation: Op,
    readonly status: number,
    readonly problem: ProblemOf<Op>,
  ) {
    super(`${operation}: ${status} ${String((problem as { code?: unknown }).code)}`);
  }
}

export class Api {
  constructor(readonly baseUrl: string) {}

  async call<Op extends OperationId, S extends SuccessStatus<Op>>(
    operation: Op,
    [method, template]: RouteOf<Op>,
    expected: S,
    options: Options<Op> = {},
  ): Promise<Json<Responses<Op>[S]>> {
    let path: string = template;
    const pathParams: Record<string, unknown> = options.path ?? {};
    for (const [name, value] of Object.entries(pathParams)) {
      path = path.replace(`{${name}}`, encodeURIComponent(String(value)));
    }
    const url = new URL(path, this.baseUrl);
    const query: Record<string, unknown> = options.query ?? {};
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
    const init: RequestInit = { method: method.toUpperCase(), headers };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(url, init);
    if (response.status === Number(expected)) {
      const text = await response.text();
      return (text ? JSON.parse(text) : undefined) as Json<Responses<Op>[S]>;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.startsWith("application/problem+json")) {
      throw new Error(`${operation}: ${response.status} without a problem document (${type})`);
    }
    throw new ApiError(operation, response.status, (await response.json()) as ProblemOf<Op>);
  }
}

function report(step: string, details: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ step, ...details })}\n`);
}

async function readCode(): Promise<string> {
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line.trim();
  }
  throw new Error("standard input closed before a verification code arrived");
}

async function main(): Promise<void> {
  const api = new Api(process.env.NATOMEDIA_API_URL ?? "http://127.0.0.1:8000");
  const email = process.env.NATOMEDIA_EMAIL ?? `frontend-${Date.now()}@example.org`;
  const password = "Harbour-Lights-2024!";

  const pending = await api.call("registerAccount", ["post", "/v1/auth/register"], 202, {
    body: { email, password, newsletter: false, language: "en" },
  });
  report("registered", { status: pending.status, code_expires_in: pending.code_expires_in });

  const code = await readCode();
  const verified = await api.call("verifyEmail", ["post", "/v1/auth/verify"], 200, {
    body: { email, code },
  });
  report("verified", { token_type: verified.token_type, expires_in: verified.expires_in });

  try {
    await api.call("login", ["post", "/v1/auth/login"], 200, {
      body: { email, password: `${password}-wrong` },
    });
    throw new Error("a wrong password was accepted");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const problem = (error as ApiError<"login">).problem;
    // `code` is a union of the documented codes: a misspelt one does not compile.
    switch (problem.code) {
      case "invalid_credentials":
        report("wrong_password_refused", { status: error.status, code: problem.code });
        break;
      default:
        throw error;
    }
  }

  const session: components["schemas"]["TokenPair"] = await api.call(
    "login",
    ["post", "/v1/auth/login"],
    200,
    { body: { email, password } },
  );
  report("logged_in", { expires_in: session.expires_in });

  const refreshed = await api.call("refreshToken", ["post", "/v1/auth/token/refresh"], 200, {
    body: { refresh_token: session.refresh_token },
  });
  report("refreshed", { rotated: refreshed.refresh_token !== session.refresh_token });
  const token = refreshed.access_token;

  const me = await api.call("getMe", ["get", "/v1/auth/me"], 200, { token });
  report("me", { email: me.email, email_verified: me.email_verified });

  const videos = await api.call("listVideos", ["get", "/v1/media/videos"], 200, {
    query: { limit: 5 },
  });
  const first = videos.items[0];
  if (first === undefined) throw new Error("the catalogue is empty");
  // Items are a union: the change feed (`updated_since`) also carries withdrawn tombstones.
  if (first.status !== "published") throw new Error(`video ${first.id} is withdrawn`);
  report("videos", { count: videos.items.length, first: first.title });

  const video = await api.call("getVideo", ["get", "/v1/media/videos/{video_id}"], 200, {
    path: { video_id: first.id },
  });
  const rendition = video.renditions[0];
  if (rendition === undefined) throw new Error(`video ${video.id} has no renditions`);
  const grant = await api.call(
    "createDownloadUrl",
    ["post", "/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url"],
    200,
    { token, path: { video_id: video.id, rendition_id: rendition.id } },
  );
  const head = await fetch(grant.url, { method: "HEAD" });
  report("download_url", {
    expires_at: grant.expires_at,
    head_status: head.status,
    content_length: Number(head.headers.get("content-length")),
    size_bytes: rendition.size_bytes,
  });
  if (head.status !== 200) throw new Error(`HEAD ${grant.url}: ${head.status}`);

  const articles = await api.call("listArticles", ["get", "/v1/news/articles"], 200, {
    query: { limit: 3 },
  });
  report("articles", {
    count: articles.items.length,
    first: articles.items[0]?.title ?? null,
  });

  await lookAfterTheAccount(api, email, password, token);
  report("done", { ok: true });
}

/** The account page: history, settings, sessions, export, new address and password, erasure. */
async function lookAfterTheAccount(
  api: Api,
  email: string,
  password: string,
  token: string,
): Promise<void> {
  const downloads = await api.call("listMyDownloads", ["get", "/v1/media/me/downloads"], 200, {
    token,
    query: { limit: 5 },
  });
  report("my_downloads", {
    count: downloads.items.length,
    rendition_label: downloads.items[0]?.rendition_label ?? null,
  });

  const updated = await api.call("updateAccount", ["patch", "/v1/auth/me"], 200, {
    token,
    body: { language: "fr" },
  });
  report("account_updated", { language: updated.language });

  const other = await api.call("login", ["post", "/v1/auth/login"], 200, {
    body: { email, password },
  });
  const sessions = await api.call("listSessions", ["get", "/v1/auth/sessions"], 200, { token });
  // Besides this one: the verification's session and the login just made, the newest.
  const elsewhere = sessions.items
    .filter((item) => !item.current)
    .sort((a, b) => a.created_at.localeCompare(b.created_at))
    .at(-1);
  if (elsewhere === undefined) throw new Error("the second login is not listed");
  await api.call("deleteSession", ["delete", "/v1/auth/sessions/{session_id}"], 204, {
    token,
    path: { session_id: elsewhere.id },
  });
  try {
    await api.call("refreshToken", ["post", "/v1/auth/token/refresh"], 200, {
      body: { refresh_token: other.refresh_token },
    });
    throw new Error("an ended session refreshed its tokens");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    report("session_ended", {
      listed: sessions.items.length,
      current: sessions.items.filter((item) => item.current).length,
      refresh_status: error.status,
    });
  }

  const exported = await api.call("exportAccount", ["get", "/v1/auth/me/export"], 200, { token });
  report("exported", { email: exported.account["email"], sessions: exported.sessions.length });

  const newEmail = `new-${email}`;
  const asked = await api.call("changeEmail", ["post", "/v1/auth/me/email"], 202, {
    token,
    body: { new_email: newEmail, password },
  });
  report("email_change_requested", { new_email: newEmail, code_expires_in: asked.code_expires_in });
  const moved = await api.call("verifyEmailChange", ["post", "/v1/auth/me/email/verify"], 200, {
    token,
    body: { code: await readCode() },
  });
  report("email_changed", { email: moved.email });

  const newPassword = "Lantern-Quay-2031?";
  const changed = await api.call("changePassword", ["put", "/v1/auth/me/password"], 200, {
    token: moved.tokens.access_token,
    body: { current_password: password, new_password: newPassword },
  });
  await api.call("logoutAll", ["post", "/v1/auth/logout-all"], 204, {
    token: changed.access_token,
  });
  report("logged_out_everywhere", { password_changed: true });

  const last = await api.call("login", ["post", "/v1/auth/login"], 200, {
    body: { email: newEmail, password: newPassword },
  });
  await api.call("deleteAccount", ["delete", "/v1/auth/me"], 204, {
    token: last.access_token,
    body: { password: newPassword },
  });
  report("account_deleted", { ok: true });
}

main().catch((error: unknown) => {
  const problem = error instanceof ApiError ? error.problem : undefined;
  process.stderr.write(`${String(error)}${problem ? ` ${JSON.stringify(problem)}` : ""}\n`);
  process.exitCode = 1;
});
