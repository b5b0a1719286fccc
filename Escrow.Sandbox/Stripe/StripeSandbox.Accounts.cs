namespace Escrow.Sandbox;

// Connected accounts and their onboarding.
public sealed partial class StripeSandbox
{
    /// <summary>
    /// Completes onboarding: the requested capabilities active, payouts enabled unless <paramref name="payoutsEnabled"/>
    /// is false (Stripe can activate transfers while payouts still wait for a bank account); emits account.updated and
    /// capability.updated, as events of the connected account.
    /// </summary>
    public SandboxAccount? EnablePayouts(string accountId, bool payoutsEnabled = true)
    {
        lock (_gate)
        {
            if (!_accounts.TryGetValue(accountId, out var account))
            {
                return null;
            }

            var capabilities = new Dictionary<string, string>(account.Capabilities, StringComparer.Ordinal);
            foreach (var name in capabilities.Keys.ToList())
            {
                capabilities[name] = "active";
            }

            capabilities["transfers"] = "active";
            account = account with
            {
                ChargesEnabled = capabilities.ContainsKey("card_payments"),
                PayoutsEnabled = payoutsEnabled,
                DetailsSubmitted = true,
                Capabilities = capabilities,
            };
            _accounts[accountId] = account;
            AddEvent("account.updated", account.Id, StripeJson.Of(account), null, account.Id);
            AddEvent("capability.updated", "transfers", StripeJson.Capability(account, "transfers"), null, account.Id);
            return account;
        }
    }

    internal StripeResponse CreateAccount(StripeForm form, string? key)
    {
        _ = key;
        var type = form.String("type") ?? "express";
        if (type is not ("express" or "standard" or "custom"))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                "Invalid type: must be one of custom, express, or standard", "type");
        }

        // Only the capabilities asked for, as Stripe does for an Express account.
        var capabilities = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, requested) in form.NestedField("capabilities", "requested"))
        {
            if (requested == "true")
            {
                capabilities[name] = "inactive";
            }
        }

        var country = (form.String("country") ?? _options.PlatformCountry).ToUpperInvariant();
        var agreement = RequireServiceAgreement(form, country, capabilities);
        var account = new SandboxAccount
        {
            Id = NewId("acct"),
            Type = type,
            ServiceAgreement = agreement,
            Country = country,
            Email = form.String("email"),
            BusinessType = form.String("business_type"),
            Capabilities = capabilities,
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _accounts[account.Id] = account;
        return StripeResponse.Ok(StripeJson.Of(account));
    }

    internal StripeResponse RetrieveAccount(string id) =>
        _accounts.TryGetValue(id, out var account)
            ? StripeResponse.Ok(StripeJson.Of(account))
            : throw StripeApiException.Missing("account", id, "account");
}
