namespace Escrow.Sandbox;

/// <summary>Connect: service agreements, single-use account links and the hosted onboarding page's outcomes.</summary>
public sealed partial class StripeSandbox
{
    /// <summary>What a visit to an account link's URL gets: the onboarding page, or a redirect.</summary>
    internal readonly record struct LinkVisit(SandboxAccountLink? ShowPageOf, string? RedirectTo);

    public IReadOnlyList<SandboxAccountLink> AccountLinks
    {
        get { lock (_gate) { return [.. _accountLinks.Values]; } }
    }

    /// <summary>
    /// Stripe's rules for <c>tos_acceptance[service_agreement]</c>: <c>full</c> (the default) or <c>recipient</c>; an
    /// account in another country than the platform's needs <c>recipient</c> (cross-border payouts), and a
    /// <c>recipient</c> account cannot request <c>card_payments</c>.
    /// </summary>
    private string RequireServiceAgreement(StripeForm form, string country, Dictionary<string, string> capabilities)
    {
        var agreement = form.String("tos_acceptance[service_agreement]") ?? "full";
        if (agreement is not ("full" or "recipient"))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                "Invalid tos_acceptance[service_agreement]: must be one of full or recipient",
                "tos_acceptance[service_agreement]");
        }

        if (agreement == "full" && !string.Equals(country, _options.PlatformCountry, StringComparison.OrdinalIgnoreCase))
        {
            throw new StripeApiException(400, "invalid_request_error", "invalid_request_error",
                $"Connected accounts in {country} cannot be created by a platform in {_options.PlatformCountry} under the " +
                "full service agreement: use tos_acceptance[service_agreement]=recipient for cross-border payouts.",
                "tos_acceptance[service_agreement]");
        }

        if (agreement == "recipient" && capabilities.ContainsKey("card_payments"))
        {
            throw new StripeApiException(400, "invalid_request_error", "invalid_request_error",
                "Accounts under the recipient service agreement cannot request the card_payments capability.",
                "capabilities[card_payments][requested]");
        }

        return agreement;
    }

    internal StripeResponse CreateAccountLink(StripeForm form, string sandboxBase)
    {
        var accountId = form.RequiredString("account");
        var type = form.RequiredString("type");
        if (type is not ("account_onboarding" or "account_update"))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                "Invalid type: must be one of account_onboarding or account_update", "type");
        }

        // Both are required by Stripe: a used or expired link sends its visitor to refresh_url.
        var refreshUrl = form.RequiredString("refresh_url");
        var returnUrl = form.RequiredString("return_url");
        if (!_accounts.ContainsKey(accountId))
        {
            throw new StripeApiException(400, "invalid_request_error", "resource_missing",
                $"No such account: '{accountId}'", "account");
        }

        var now = Now();
        var link = new SandboxAccountLink
        {
            Id = NewId("acctlink"),
            Account = accountId,
            RefreshUrl = refreshUrl,
            ReturnUrl = returnUrl,
            Created = now,
            ExpiresAt = now + (long)_options.AccountLinkLifetime.TotalSeconds,
        };
        _accountLinks[link.Id] = link;
        return StripeResponse.Ok(new JsonObject
        {
            ["object"] = "account_link",
            ["url"] = $"{sandboxBase}/connect/onboarding/{link.Id}",
            ["created"] = now,
            ["expires_at"] = link.ExpiresAt,
        });
    }

    /// <summary>A GET of the link: the page the first time before it expires, else a redirect to its refresh_url.</summary>
    internal LinkVisit VisitAccountLink(string linkId)
    {
        lock (_gate)
        {
            if (!_accountLinks.TryGetValue(linkId, out var link))
            {
                return default;
            }

            if (link.Used || Now() >= link.ExpiresAt)
            {
                return new LinkVisit(null, link.RefreshUrl);
            }

            _accountLinks[linkId] = link with { Used = true };
            return new LinkVisit(link, null);
        }
    }

    /// <summary>The page's form: completes onboarding and redirects to return_url; a link never shown goes to refresh_url.</summary>
    internal LinkVisit CompleteAccountLink(string linkId)
    {
        lock (_gate)
        {
            if (!_accountLinks.TryGetValue(linkId, out var link))
            {
                return default;
            }

            if (!link.Used)
            {
                return new LinkVisit(null, link.RefreshUrl);
            }

            EnablePayouts(link.Account);
            return new LinkVisit(null, link.ReturnUrl);
        }
    }
}
