namespace Escrow.Sandbox;

// One API request at a time: its idempotency key, the faults injected into it, and the request log.
public sealed partial class StripeSandbox
{
    /// <summary>Makes the next <paramref name="times"/> calls of <paramref name="operation"/> fail.</summary>
    public void InjectFault(string operation, SandboxFaultKind kind, int times = 1)
    {
        if (!SandboxOperations.All.Contains(operation))
        {
            throw new ArgumentException($"Unknown operation '{operation}'.", nameof(operation));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(times);
        lock (_gate)
        {
            if (!_faults.TryGetValue(operation, out var list))
            {
                _faults[operation] = list = [];
            }

            list.Add(new Fault(kind, times));
        }
    }

    public void ClearFaults()
    {
        lock (_gate)
        {
            _faults.Clear();
        }
    }

    /// <summary>Runs one API request: idempotency, fault injection, the operation, and the request log.</summary>
    internal (StripeResponse Response, bool Replayed) Execute(
        string method, string path, string? operation, string? idempotencyKey, StripeForm form,
        Func<StripeForm, string?, StripeResponse> action)
    {
        lock (_gate)
        {
            var (response, replayed) = ExecuteLocked(method, path, operation, idempotencyKey, form, action);
            _requests.Add(new SandboxRequest(method, path, idempotencyKey, response.Status, operation, replayed));
            return (response, replayed);
        }
    }

    private (StripeResponse Response, bool Replayed) ExecuteLocked(
        string method, string path, string? operation, string? key, StripeForm form,
        Func<StripeForm, string?, StripeResponse> action)
    {
        var fingerprint = $"{method} {path}?{form.Fingerprint()}";
        if (key is not null && _idempotency.TryGetValue(key, out var stored))
        {
            if (stored.Fingerprint != fingerprint)
            {
                return (new StripeResponse(400, StripeJson.Error("idempotency_error", null,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
                    $"Try using a key other than '{key}' if you meant to execute a different request.", null)), false);
            }

            // A lost answer is the network's doing, not Stripe's: a replayed answer is lost on its way back as well.
            return operation is not null && TakeFault(operation, SandboxFaultKind.LostResponse) is not null
                ? (ServerError(), true)
                : (new StripeResponse(stored.Status, (JsonObject)JsonNode.Parse(stored.Body)!), true);
        }

        var fault = operation is null ? null : TakeFault(operation);
        switch (fault)
        {
            case SandboxFaultKind.ServerError:
                // Stripe saves the result of a request that started executing, a 500 included, and replays it.
                var failed = ServerError();
                if (key is not null)
                {
                    _idempotency[key] = new StoredResponse(fingerprint, failed.Status, failed.Body.ToJsonString());
                }

                return (failed, false);
            case SandboxFaultKind.ServerErrorBeforeExecution:
                return (ServerError(), false);
            case SandboxFaultKind.Refused:
                var refused = Refusal(operation!);
                if (key is not null)
                {
                    _idempotency[key] = new StoredResponse(fingerprint, refused.Status, refused.Body.ToJsonString());
                }

                return (refused, false);
            case SandboxFaultKind.RateLimited:
                return (new StripeResponse(429, StripeJson.Error("rate_limit_error", "rate_limit",
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    null)), false);
        }

        StripeResponse response;
        try
        {
            response = action(form, key);
        }
        catch (StripeApiException ex)
        {
            response = ex.ToResponse();
        }

        if (key is not null && response.Status < 500 && response.Status != 429)
        {
            _idempotency[key] = new StoredResponse(fingerprint, response.Status, response.Body.ToJsonString());
        }

        return fault == SandboxFaultKind.LostResponse ? (ServerError(), false) : (response, false);
    }

    private static StripeResponse Refusal(string operation)
    {
        var (code, message) = operation switch
        {
            SandboxOperations.PaymentIntentsCancel => ("payment_intent_unexpected_state", "This PaymentIntent could not be canceled (sandbox fault injection)."),
            SandboxOperations.RefundsCreate => ("charge_already_refunded", "This charge has already been refunded (sandbox fault injection)."),
            SandboxOperations.PaymentIntentsCapture => ("charge_expired_for_capture", "This charge has expired for capture (sandbox fault injection)."),
            SandboxOperations.TransferReversalsCreate => ("balance_insufficient", "The connected account's balance does not cover this reversal (sandbox fault injection)."),
            _ => ("resource_missing", "No such object (sandbox fault injection)."),
        };
        return new StripeResponse(400, StripeJson.Error("invalid_request_error", code, message, null));
    }

    private static StripeResponse ServerError() =>
        new(500, StripeJson.Error("api_error", null,
            "An unknown error occurred while processing your request (sandbox fault injection).", null));

    /// <summary>Takes the operation's next fault; with <paramref name="only"/>, only if it is of that kind.</summary>
    private SandboxFaultKind? TakeFault(string operation, SandboxFaultKind? only = null)
    {
        if (!_faults.TryGetValue(operation, out var list) || list.Count == 0 || (only is not null && list[0].Kind != only))
        {
            return null;
        }

        var fault = list[0];
        fault.Remaining--;
        if (fault.Remaining <= 0)
        {
            list.RemoveAt(0);
        }

        return fault.Kind;
    }
}
