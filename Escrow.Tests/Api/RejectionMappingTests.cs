using System.Reflection;
using Escrow.Api;

namespace Escrow.Tests.Api;

/// <summary>Every rejection the grains can give maps to one HTTP status, in Problems.Rejection, with its wire code.</summary>
public sealed class RejectionMappingTests
{
    public static TheoryData<string> EveryRejection()
    {
        var data = new TheoryData<string>();
        foreach (var field in typeof(Rejection).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.FieldType == typeof(Rejection)))
        {
            data.Add(field.Name);
        }
        return data;
    }

    private static Rejection Named(string field) => (Rejection)typeof(Rejection).GetField(field)!.GetValue(null)!;

    [Theory]
    [MemberData(nameof(EveryRejection))]
    public void A_rejection_maps_to_its_status_with_its_code_as_the_problem_type(string field)
    {
        var rejection = Named(field);
        var expected = rejection.Code switch
        {
            "unknown_escrow" or "unknown_recipient" => 404,
            "idempotency_key_reused" => 422,
            "daily_limit_reached" or "too_many_unpaid" or "too_many_declines" => 429,
            "unsupported_response_window" => 400,
            _ => 409,
        };

        var problem = Problems.Rejection(rejection, Guid.Empty);

        Assert.Equal(expected, problem.StatusCode);
        Assert.Equal(rejection.Message, problem.ProblemDetails.Detail);
        if (rejection != Rejection.UnknownEscrow)
        {
            Assert.Equal(rejection.Code, problem.ProblemDetails.Extensions["rejection"]);
            Assert.Equal($"https://escrow.invalid/problems/{rejection.Code}", problem.ProblemDetails.Type);
        }
    }

    [Fact]
    public void A_rejection_that_crossed_a_grain_call_is_the_same_value()
    {
        var copy = Rejection.DailyLimitReached with { };
        var notAllowed = Rejection.NotAllowed(EscrowStatus.Held, "captured");

        Assert.Equal(429, Problems.Rejection(copy).StatusCode);
        Assert.Equal(409, Problems.Rejection(notAllowed).StatusCode);
        Assert.Equal("not_allowed_in_status", Problems.Rejection(notAllowed).ProblemDetails.Title);
    }
}
