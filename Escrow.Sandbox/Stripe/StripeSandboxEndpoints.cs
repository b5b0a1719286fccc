using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Escrow.Sandbox;

/// <summary>Maps the Stripe emulator under <c>/_sandbox/stripe</c>.</summary>
public static class StripeSandboxEndpoints
{
    public const string BasePath = "/_sandbox/stripe";

    public static IEndpointRouteBuilder MapStripeSandbox(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var group = endpoints.MapGroup(BasePath).ExcludeFromDescription();

        group.MapPost("/v1/payment_intents", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.PaymentIntentsCreate, s.CreatePaymentIntent));
        group.MapGet("/v1/payment_intents", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListPaymentIntents(f)));
        group.MapGet("/v1/payment_intents/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.RetrievePaymentIntent(id, f)));
        group.MapPost("/v1/payment_intents/{id}/confirm", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.PaymentIntentsConfirm, (f, k) => s.ConfirmPaymentIntent(id, f, k)));
        group.MapPost("/v1/payment_intents/{id}/capture", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.PaymentIntentsCapture, (f, k) => s.CapturePaymentIntent(id, f, k)));
        group.MapPost("/v1/payment_intents/{id}/cancel", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.PaymentIntentsCancel, (f, k) => s.CancelPaymentIntent(id, f, k)));

        group.MapGet("/v1/charges/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (_, _) => s.RetrieveCharge(id)));

        group.MapPost("/v1/transfers", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.TransfersCreate, s.CreateTransfer));
        group.MapGet("/v1/transfers", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListTransfers(f)));
        group.MapGet("/v1/transfers/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (_, _) => s.RetrieveTransfer(id)));
        group.MapPost("/v1/transfers/{id}/reversals", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.TransferReversalsCreate, (f, k) => s.CreateTransferReversal(id, f, k)));
        group.MapGet("/v1/transfers/{id}/reversals", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListTransferReversals(id, f)));

        group.MapPost("/v1/refunds", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.RefundsCreate, s.CreateRefund));
        group.MapGet("/v1/refunds", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListRefunds(f)));

        group.MapPost("/v1/accounts", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.AccountsCreate, s.CreateAccount));
        group.MapGet("/v1/accounts/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (_, _) => s.RetrieveAccount(id)));
        group.MapPost("/v1/account_links", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, SandboxOperations.AccountLinksCreate, (f, _) => s.CreateAccountLink(f, SandboxBase(ctx))));

        group.MapPost("/v1/webhook_endpoints", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.CreateWebhookEndpoint(f)));
        group.MapGet("/v1/webhook_endpoints", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListWebhookEndpoints(f)));
        group.MapDelete("/v1/webhook_endpoints/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (_, _) => s.DeleteWebhookEndpoint(id)));

        group.MapGet("/v1/events", (HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (f, _) => s.ListEvents(f)));
        group.MapGet("/v1/events/{id}", (string id, HttpContext ctx, StripeSandbox s) =>
            Run(ctx, s, null, (_, _) => s.RetrieveEvent(id)));

        // ---- controls (no auth) ----
        group.MapPost("/faults", AddFault);
        group.MapDelete("/faults", (StripeSandbox s) =>
        {
            s.ClearFaults();
            return Results.NoContent();
        });
        group.MapPost("/accounts/{id}/enable-payouts", async (string id, bool? payouts, StripeSandbox s) =>
        {
            var account = s.EnablePayouts(id, payouts ?? true);
            await s.WhenDurableAsync().ConfigureAwait(false);
            return account is not null
                ? Results.Text(StripeJson.Of(account).ToJsonString(), "application/json")
                : Results.NotFound();
        });
        group.MapPost("/charges/{id}/dispute", async (string id, StripeSandbox s) =>
        {
            SandboxDispute? dispute;
            try
            {
                dispute = s.OpenDispute(id);
            }
            catch (InvalidOperationException ex)
            {
                return Results.Conflict(new { error = ex.Message });
            }

            await s.WhenDurableAsync().ConfigureAwait(false);
            return dispute is not null ? Results.Text(StripeJson.Of(dispute).ToJsonString(), "application/json") : Results.NotFound();
        });
        group.MapPost("/disputes/{id}/close", CloseDispute);
        group.MapPost("/accounts/{id}/payout", async (string id, StripeSandbox s) =>
        {
            var account = s.PayOutBalance(id);
            await s.WhenDurableAsync().ConfigureAwait(false);
            return account is not null ? Results.Ok(new { account = account.Id, balance = s.AccountBalance(id) }) : Results.NotFound();
        });
        group.MapPost("/events/{id}/resend", (string id, StripeSandbox s) =>
            s.ResendEvent(id) ? Results.Accepted() : Results.NotFound());
        group.MapPost("/payment_intents/{id}/expire", async (string id, StripeSandbox s) =>
        {
            var expired = s.ExpireAuthorisation(id);
            await s.WhenDurableAsync().ConfigureAwait(false);
            return expired is not null
                ? Results.Text(StripeJson.Of(expired).ToJsonString(), "application/json")
                : s.GetPaymentIntent(id) is null
                    ? Results.NotFound()
                    : Results.Conflict(new { error = "Only a PaymentIntent in requires_capture holds an authorisation to expire." });
        });
        group.MapGet("/stats", (StripeSandbox s) => Results.Ok(s.Stats));
        group.MapPost("/reset", (StripeSandbox s) =>
        {
            s.Reset();
            return Results.NoContent();
        });

        // ---- a stand-in for Stripe's hosted onboarding page: one visit per link, as on Stripe ----
        group.MapGet("/connect/onboarding/{linkId}", async (string linkId, StripeSandbox s) =>
        {
            var visit = s.VisitAccountLink(linkId);
            await s.WhenDurableAsync().ConfigureAwait(false);
            if (visit.RedirectTo is { } refresh)
            {
                return Results.Redirect(refresh);
            }

            if (visit.ShowPageOf is not { } link)
            {
                return Results.NotFound();
            }

            var encoded = WebUtility.HtmlEncode(link.Account);
            return Results.Content(
                $"<!doctype html><html><head><title>Sandbox onboarding</title></head><body>" +
                $"<h1>Sandbox Connect onboarding</h1><p>Account <code>{encoded}</code></p>" +
                $"<form method=\"post\"><button type=\"submit\">Complete onboarding</button></form>" +
                $"</body></html>", "text/html");
        });
        group.MapPost("/connect/onboarding/{linkId}", async (string linkId, StripeSandbox s) =>
        {
            var visit = s.CompleteAccountLink(linkId);
            await s.WhenDurableAsync().ConfigureAwait(false);
            return visit.RedirectTo is { } next ? Results.Redirect(next) : Results.NotFound();
        }).DisableAntiforgery();

        return endpoints;
    }

    private static async Task<IResult> AddFault(HttpContext ctx, StripeSandbox sandbox)
    {
        var (request, invalid) = await SandboxControlJson.ReadAsync<FaultRequest>(ctx).ConfigureAwait(false);
        if (invalid is not null)
        {
            return invalid;
        }

        if (request?.Operation is not { } operation || !SandboxOperations.All.Contains(operation))
        {
            return Results.BadRequest(new { error = "operation must be one of " + string.Join(", ", SandboxOperations.All) });
        }

        SandboxFaultKind? kind = request.Kind switch
        {
            "server_error" => SandboxFaultKind.ServerError,
            "server_error_before_execution" => SandboxFaultKind.ServerErrorBeforeExecution,
            "lost_response" => SandboxFaultKind.LostResponse,
            "rate_limited" => SandboxFaultKind.RateLimited,
            "refused" => SandboxFaultKind.Refused,
            _ => null,
        };
        if (kind is null)
        {
            return Results.BadRequest(new { error = "kind must be one of server_error, server_error_before_execution, lost_response, rate_limited, refused" });
        }

        var times = request.Times ?? 1;
        if (times <= 0)
        {
            return Results.BadRequest(new { error = "times must be positive" });
        }

        sandbox.InjectFault(operation, kind.Value, times);
        return Results.Ok(new { operation, kind = request.Kind, times });
    }

    private static async Task<IResult> CloseDispute(string id, HttpContext ctx, StripeSandbox sandbox)
    {
        var (request, invalid) = await SandboxControlJson.ReadAsync<CloseDisputeRequest>(ctx).ConfigureAwait(false);
        if (invalid is not null)
        {
            return invalid;
        }

        if (request?.Status is not ("won" or "lost"))
        {
            return Results.BadRequest(new { error = "status must be won or lost" });
        }

        SandboxDispute? dispute;
        try
        {
            dispute = sandbox.CloseDispute(id, request.Status == "won");
        }
        catch (InvalidOperationException ex)
        {
            return Results.Conflict(new { error = ex.Message });
        }

        await sandbox.WhenDurableAsync().ConfigureAwait(false);
        return dispute is not null ? Results.Text(StripeJson.Of(dispute).ToJsonString(), "application/json") : Results.NotFound();
    }

    private static string SandboxBase(HttpContext ctx) =>
        $"{ctx.Request.Scheme}://{ctx.Request.Host}{ctx.Request.PathBase}{BasePath}";

    private static async Task Run(HttpContext ctx, StripeSandbox sandbox, string? operation,
        Func<StripeForm, string?, StripeResponse> action)
    {
        var request = ctx.Request;
        var path = request.Path.StartsWithSegments(BasePath, out var rest) ? rest.Value ?? "/" : request.Path.Value ?? "/";
        var isPost = HttpMethods.IsPost(request.Method);
        var key = isPost && request.Headers.TryGetValue("Idempotency-Key", out var keyValues)
            && !string.IsNullOrWhiteSpace(keyValues.ToString())
                ? keyValues.ToString()
                : null;

        ctx.Response.Headers["Request-Id"] = StripeSandbox.NewId("req");
        if (!sandbox.AdmitRequest())
        {
            var limited = new StripeResponse(429, StripeJson.Error("rate_limit_error", "rate_limit",
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.", null));
            sandbox.RecordRequest(new SandboxRequest(request.Method, path, key, 429, operation));
            ctx.Response.Headers.RetryAfter = "1";
            await Write(ctx, limited).ConfigureAwait(false);
            return;
        }

        if (key is not null)
        {
            ctx.Response.Headers["Idempotency-Key"] = key;
        }

        var authorization = request.Headers.Authorization.ToString();
        if (!authorization.StartsWith("Bearer sk_test_", StringComparison.Ordinal))
        {
            var unauthorized = new StripeResponse(401, StripeJson.Error("invalid_request_error", null,
                "Invalid API Key provided: the sandbox accepts any secret key starting with sk_test_.", null));
            sandbox.RecordRequest(new SandboxRequest(request.Method, path, key, 401, operation));
            await Write(ctx, unauthorized).ConfigureAwait(false);
            return;
        }

        StripeForm form;
        try
        {
            form = await StripeForm.ReadAsync(request, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            var invalid = new StripeResponse(400, StripeJson.Error("invalid_request_error", null,
                "Invalid request body: " + ex.Message, null));
            sandbox.RecordRequest(new SandboxRequest(request.Method, path, key, 400, operation));
            await Write(ctx, invalid).ConfigureAwait(false);
            return;
        }

        var (response, replayed) = sandbox.Execute(request.Method, path, operation, key, form, action);
        // Like Stripe, an answer is given once what it reports is durable.
        await sandbox.WhenDurableAsync().ConfigureAwait(false);
        if (replayed)
        {
            ctx.Response.Headers["Idempotent-Replayed"] = "true";
        }

        if (response.Status == 429)
        {
            ctx.Response.Headers.RetryAfter = "1";
        }

        await Write(ctx, response).ConfigureAwait(false);
    }

    private static Task Write(HttpContext ctx, StripeResponse response)
    {
        ctx.Response.StatusCode = response.Status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(response.Body.ToJsonString(), ctx.RequestAborted);
    }

    private sealed class CloseDisputeRequest
    {
        public string? Status { get; set; }
    }

    private sealed class FaultRequest
    {
        public string? Operation { get; set; }
        public string? Kind { get; set; }
        public int? Times { get; set; }
    }
}
